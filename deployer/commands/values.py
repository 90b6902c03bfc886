from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from deployer.commands.common import cli_layers, project
from deployer.desired import resolve
from deployer.errors import UsageError
from deployer.merge import Merged, leaves, merge_layers
from deployer.redact import for_values
from deployer.render import dump_values
from deployer.secrets import MASK, is_sensitive, mask_values


def values(args: argparse.Namespace) -> int:
    proj = project(args)
    releases = resolve(proj, args.environment, cli_layers(args))
    matches = [r for r in releases if args.release in (r.name, r.key)]
    if not matches:
        names = ", ".join(sorted(r.key for r in releases)) or "(none)"
        raise UsageError(f"no release '{args.release}' in {proj.doc.file}", hint=f"known releases: {names}")
    if len(matches) > 1:
        raise UsageError(
            f"release name '{args.release}' is ambiguous",
            hint="name it as namespace/name: " + ", ".join(r.key for r in matches),
        )
    release = matches[0]
    merged = merge_layers(list(release.layers))
    sensitive = () if args.show_secrets else release.sensitive
    # By path, then by text: a sensitive value inside another one (a URL holding the password).
    text = for_values(merged.values, sensitive)
    if args.explain:
        sys.stdout.write(text.redact(explain(merged, sensitive)))
    else:
        sys.stdout.write(dump_values(text.value(mask_values(merged.values, sensitive))))
    return 0


def explain(merged: Merged, sensitive: tuple[str, ...]) -> str:
    lines: list[str] = []
    for path, value in leaves(merged.values):
        shown = _show(value, path, sensitive)
        origin = merged.origins.get(path)
        lines.append(f"{'.'.join(path)} = {shown}    # {origin or 'unknown'}")
        for prefix_len in range(len(path), 0, -1):
            for old in merged.overridden.get(path[:prefix_len], []):
                old_shown = _show(old.value, old.path, sensitive)
                what = "" if old.path == path else f"{'.'.join(old.path)} = "
                lines.append(f"    overrides {what}{old_shown}    # {old.origin}")
    return "\n".join(lines) + ("\n" if lines else "")


def _show(value: Any, path: tuple[str, ...], sensitive: tuple[str, ...]) -> str:
    if value is not None and is_sensitive(path, sensitive):
        return MASK
    return json.dumps(value, sort_keys=True, default=str)
