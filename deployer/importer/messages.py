"""helmfile's error messages as the import shows them: without klog's timestamps, and with the
file:line of the user's file they point at (a template's line, YAML's line; never a timestamp)."""

from __future__ import annotations

import re
from pathlib import Path

from deployer.errors import Mark
from deployer.importer.sandbox import Sandbox
from deployer.yamlsource import display_path

PART = re.compile(r"^---[ \t]*(?:#.*)?$", re.M)


def helmfile_message(stderr: str) -> str:
    lines = [_KLOG.sub("", line).strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "err" in line.lower()]
    return " ".join((errors or lines)[-3:]) or "no message"


_KLOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+\s+[\w.]+:\d+\]\s*")
_AT = re.compile(r"template: [\w./-]*?:(\d+):(\d+)|\byaml: line (\d+)|\bline (\d+)")
_FILE = r"\.?/?([\w./-]+?\.(?:ya?ml\.gotmpl|ya?ml|gotmpl))"
_NAMED = re.compile(r"(?<![\w/.])" + _FILE)
_IN_STATE = re.compile(r"\bin " + _FILE + r"(?=:)")
_VALUES_FILE = re.compile(r"(?:values file \"|render \[)" + _FILE + r"(?=[\"\]])")


def message_mark(message: str, shown: str, box: Sandbox | None = None, base: Path | None = None) -> Mark:
    """The file:line an error message of helmfile's points at: the line is a template's
    `template: NAME:LINE:COL` or YAML's `line N` (never a timestamp), the file the last one named
    before it (a state file's part N counts from that part's first line)."""
    found = list(_AT.finditer(message))
    at = found[-1] if found else None
    if at is None:
        return Mark(shown, 1, 1)
    line = int(at.group(1) or at.group(3) or at.group(4))
    column = int(at.group(2)) if at.group(2) else 1
    prefix = message[: at.start()]
    # The most precise name first: an environment values file, then the state file helmfile was in.
    chosen = [*_IN_STATE.finditer(prefix)][-1:] or [*_NAMED.finditer(prefix)][-1:]
    chosen = [*_VALUES_FILE.finditer(prefix)][-1:] or chosen
    if not chosen:
        return Mark(shown, line, column)
    name = chosen[0].group(1)
    after = prefix[chosen[0].end() :]
    part = re.match(r"\.part\.(\d+)", after) or re.search(r"document at index (\d+)", after)
    path = Path(name) if Path(name).is_absolute() or base is None else base / name
    if part and box is not None and path.resolve() in box.texts:
        line += _part_offset(box.texts[path.resolve()], int(part.group(1)))
    return Mark(display_path(path) if base is not None else name, line, column)


def _part_offset(text: str, part: int) -> int:
    starts = [0] + [m.end() + 1 for m in PART.finditer(text)]
    return text.count("\n", 0, starts[part]) if part < len(starts) else 0


_UNMARSHAL = re.compile(r"failed to read (\S+?): reading document at index \d+: yaml: unmarshal errors:")
_NOT_TEXT = re.compile(r"line (\d+): cannot unmarshal !!str `zzdeplo")
_READS = re.compile(r'\benv\s+"([A-Za-z_][A-Za-z0-9_]*)"')


def typed_reads(stderr: str, box: Sandbox, directory: Path) -> set[str]:
    """The variables read (`env "VAR"`) where helmfile could not unmarshal a marker (a boolean, a
    number or a list belongs there): on the line YAML names, in whichever part of the file (helmfile
    parses a template's parts one by one and names none)."""
    found = _UNMARSHAL.search(stderr)
    if not found:
        return set()
    name = Path(found.group(1))
    text = box.texts.get(box.original(str(name if name.is_absolute() else directory / name)).resolve())
    if text is None:
        return set()
    named = {int(n) for n in _NOT_TEXT.findall(stderr[found.end() :])}
    out: set[str] = set()
    for part in PART.split(text):
        lines = (part[1:] if part.startswith("\n") else part).splitlines()
        out.update(v for n in named if 0 < n <= len(lines) for v in _READS.findall(lines[n - 1]))
    return out
