"""The items of a top-level list (`helmfiles:`, `bases:`) read from a state file's text (a
templated one: helmfile consumed the key before printing the state), and the files they name."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_ITEM = re.compile(r"""^\s*-\s+(?:path:\s*)?(?P<path>["']?[^\s"'#{}]*[^\s"'#{}:]["']?)?\s*(?:#.*)?$""")
_PATH = re.compile(r"""^\s+path:\s*(?P<path>["']?[^\s"'#{}]+["']?)\s*(?:#.*)?$""")


def listed(text: str, key: str) -> list[tuple[str, int, Any]]:
    """(path, line, path) of each item of the top-level list `key` in a template's text: `- PATH`,
    `- path: PATH`, or `path: PATH` on a line of its own in the item (a glob such as `apps/*`
    included). Lines deeper in an item (its `values:` list) are not items."""
    found: list[tuple[str, int, Any]] = []
    top, col = "", None
    for number, line in enumerate(text.splitlines(), 1):
        if line and not line.startswith((" ", "-", "#")):
            top, col = line.split(":", 1)[0].strip(), None
            continue
        if top != key or not line.strip() or line.lstrip().startswith("#"):
            continue
        dash = re.match(r"^(\s*)-(\s|$)", line)
        if dash and col is None:
            col = len(dash.group(1))
        if dash and len(dash.group(1)) == col:
            item = _ITEM.match(line)
            if item and item.group("path"):
                path = item.group("path").strip("\"'")
                found.append((path, number, path))
            continue
        named = _PATH.match(line)
        if named and col is not None and len(line) - len(line.lstrip()) == col + 2:
            path = named.group("path").strip("\"'")
            found.append((path, number, path))
    return found


def expand(base: Path, pattern: str) -> list[Path]:
    """The files an item names, from `base`: a glob's files, sorted, or the one path."""
    if any(c in pattern for c in "*?["):
        return sorted(p for p in base.glob(pattern) if p.is_file()) if not pattern.startswith("/") else []
    return [(base / pattern).resolve()]
