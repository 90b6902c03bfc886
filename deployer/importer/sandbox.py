"""A view of a user's helmfile that the real helmfile can resolve without running anything the files
say to run (`helmfile build` runs `prepare` and `cleanup` hooks, and no flag of it skips them).

Layers, each enough on its own for the common case:
- every state file is resolved from a copy with each `hooks:` emptied (`hooks: []`) and each
  release's chartify `dependencies:` removed, templated files included (line by line, so that a file
  that is only YAML once rendered is handled too); the rest of the tree is reached through symlinks;
- the template functions that run a command (`exec`, `envExec`) are renamed in the copies, so that
  helmfile stops with "function not defined" instead of running it;
- helmfile runs with PATH holding only helmfile and helm, a KUBECONFIG that reaches no cluster, an
  empty HOME and helm home, no plugins, and none of the caller's variables (no cloud credentials):
  the variables the files read get markers (see `EnvMarkers`).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from deployer.importer import env_reads
from deployer.importer.env_reads import env_name
from deployer.importer.sops_standin import LOG_VARIABLE, PLUGIN_YAML
from deployer.importer.statelists import expand, listed

_PART = re.compile(r"^---[ \t]*(?:#.*)?$")
_KEY = re.compile(
    r"""^(?P<dash>(?:-[ \t]+)*)(?P<key>[A-Za-z_][\w.-]*|"[^"\n]*"|'[^'\n]*')[ \t]*:(?:[ \t]|$)"""
)
_CONTROL = re.compile(r"^\{\{-?\s*(?:if|else|end|range|with|define|block|/\*)\b")
# A state file's keys; `hooks:` only as helmfile's list of hooks (a values file may hold hook
# definitions as data, in a map its templates read: `hooks: {aws-cluster: {...}}`).
_STATE_KEYS = re.compile(
    r"^(?:(?:releases|repositories|helmDefaults|helmfiles|bases|templates)\s*:|hooks\s*:\s*(?:\[|\n\s*-))",
    re.M,
)
# Release keys that hold chart values: a `hooks:` or `dependencies:` under them is the chart's own.
_VALUE_KEYS = {"values", "set", "setString", "secrets", "valuesTemplate", "setTemplate", "jsonPatches",
               "strategicMergePatches", "transformers"}  # fmt: skip
_PARTS = re.compile(r"(?:^|(?<=\n))(?:(?!^---[ \t]*(?:#.*)?$).*(?:\n|$))+", re.M)
_ACTION = re.compile(r"\{\{.*?\}\}", re.S)
_EXEC = re.compile(r"(?<![\w.$\"])(exec|envExec)\b")
EXEC_DISABLED = "deployerImportRunsNoCommand"
# `requiredEnv "VAR"`, `env "VAR"` and `env "VAR" | default "x"`; `default "x" (env "VAR")`
ENV_READ = re.compile(
    r"""\b(requiredEnv|env)\s+"([A-Za-z_][A-Za-z0-9_]*)"(?:\s*\|\s*default\s+"((?:[^"\\]|\\.)*)")?"""
)
DEFAULT_ENV = re.compile(r"""\bdefault\s+"((?:[^"\\]|\\.)*)"\s+\(\s*env\s+"([A-Za-z_][A-Za-z0-9_]*)"\s*\)""")
_SKIP_DIRS = {"node_modules", "vendor", "__pycache__"}
_MAX_FILES = 5000
_MAX_SIZE = 1 << 20


@dataclass(frozen=True)
class Stripped:
    """A key emptied in a copy: `hooks` (top level, a release's, a template's) or a release's
    `dependencies`."""

    file: Path  # the user's file
    line: int
    key: str
    release: str | None


@dataclass
class Sandbox:
    root: Path  # the temporary directory
    stripped: list[Stripped] = field(default_factory=list)
    execs: list[tuple[Path, int]] = field(default_factory=list)  # where a file runs a command
    texts: dict[Path, str] = field(default_factory=dict)  # every file read, by its user path
    v0: list[tuple[Path, int]] = field(default_factory=list)  # helmfile v0's layout, split, at releases:
    renamed: dict[Path, Path] = field(default_factory=dict)  # a user's file -> its copy's other name

    def view(self, path: Path) -> Path:
        """Where the user's `path` is in the copy."""
        resolved = path.resolve()
        return self.renamed.get(resolved) or self.root / "tree" / resolved.relative_to("/")

    def original(self, view: str) -> Path:
        """The user's path of a path in the copy (helmfile prints those)."""
        back = {str(v): user for user, v in self.renamed.items()}
        if view in back:
            return back[view]
        try:
            return Path("/") / Path(view).relative_to(self.root / "tree")
        except ValueError:
            return Path(view)

    def environ(self, helmfile: str, helm: str | None, variables: dict[str, str]) -> dict[str, str]:
        bin_dir = self.root / "bin"
        bin_dir.mkdir(exist_ok=True)
        helm_target = helm or shutil.which("helm")
        if not (bin_dir / "helmfile").exists():
            (bin_dir / "helmfile").symlink_to(Path(helmfile).resolve())
        if helm_target and not (bin_dir / "helm").exists():
            wrapper = _HELM_WRAPPER.format(python=sys.executable, helm=str(Path(helm_target).resolve()))
            (bin_dir / "helm").write_text(wrapper, encoding="utf-8")
            (bin_dir / "helm").chmod(0o755)
        home = self.root / "home"
        for sub in ("config", "cache", "data", "plugins", "tmp"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        plugin = home / "plugins" / "helm-secrets"  # answered by the wrapper: see sops_standin
        plugin.mkdir(exist_ok=True)
        (plugin / "plugin.yaml").write_text(PLUGIN_YAML, encoding="utf-8")
        return {
            **variables,
            "PATH": str(bin_dir),
            "HOME": str(home),
            "TMPDIR": str(home / "tmp"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_DATA_HOME": str(home / "data"),
            "HELM_PLUGINS": str(home / "plugins"),
            "KUBECONFIG": str(home / "no-kubeconfig"),
            "HELMFILE_TEMPDIR": str(home / "tmp"),
            LOG_VARIABLE: str(self.sops_log),
        }

    @property
    def sops_log(self) -> Path:
        """The sops files helmfile asked the sandbox's helm to decrypt (see sops_standin)."""
        return self.root / "sops.log"


# The helm helmfile runs in the sandbox: the real one, except `helm pull` (helmfile pulls each OCI
# chart before `build` or `write-values`, neither of which reads it), which leaves a stub chart where
# helmfile looks for the pulled one: resolving a state never reaches a registry; and `helm secrets
# decrypt|view FILE` (environment secrets), answered without decrypting (sops_standin).
_HELM_WRAPPER = """#!{python} -I
import json, os, sys
args = sys.argv[1:]
if args[:2] in (["secrets", "decrypt"], ["secrets", "view"]):
    from deployer.importer.sops_standin import main
    sys.exit(main(args))
if args[:1] != ["pull"]:
    os.execv({helm!r}, [{helm!r}, *args])
def flag(name, default):
    return args[args.index(name) + 1] if name in args[:-1] else default
ref = args[1] if len(args) > 1 else "chart"
name = ref.rstrip("/").rsplit("/", 1)[-1].split("@")[0].split(":")[0] or "chart"
chart = os.path.join(flag("--destination", "."), name)
os.makedirs(chart, exist_ok=True)
with open(os.path.join(chart, "Chart.yaml"), "w") as out:
    version = flag("--version", "") or "0.0.0"
    out.write("apiVersion: v2\\nname: " + json.dumps(name) + "\\nversion: " + json.dumps(version) + "\\n")
"""


@contextmanager
def sandbox(state_file: Path, *, gotmpl: bool = False) -> Iterator[Sandbox]:
    """The copy; with `gotmpl`, the state file's copy is named `NAME.gotmpl` (helmfile v1 renders only
    those as templates, v0 rendered every state file)."""
    with tempfile.TemporaryDirectory(prefix="deployer-import-") as tmp:
        box = Sandbox(Path(tmp))
        if gotmpl:
            plain = box.view(state_file)
            box.renamed[state_file.resolve()] = plain.with_name(plain.name + ".gotmpl")
        _populate(box, state_file.resolve())
        yield box


def _populate(box: Sandbox, state_file: Path) -> None:
    seen: set[Path] = set()
    queue = [state_file, *_project_files(state_file.parent)]
    while queue:
        path = queue.pop(0)
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        try:
            if path.stat().st_size > _MAX_SIZE:
                continue
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        box.texts[path] = text
        is_state = path == state_file or path.parent.name == "helmfile.d" or bool(_STATE_KEYS.search(text))
        new = text
        if is_state:
            new, v0 = split_v0(text)
            box.v0 += [(path, line) for line in v0]
            new, stripped = strip(new)
            new, flow = strip_flow(new)
            stripped += flow
            box.stripped += [Stripped(path, line, key, release) for line, key, release in stripped]
            queue += _references(path, text)
        new = split_env_defaults(env_reads.rewritten(new))
        new, lines = disable_exec(new)
        box.execs += [(path, line) for line in lines]
        if new != text or is_state:  # a state file's directory real: its `..` stays in the copy
            _materialise(box, path, new)
    _materialise(box, state_file.parent, None)


def _project_files(directory: Path) -> list[Path]:
    """The YAML and template files under the state file's directory (charts, hidden and vendored
    directories left out), at most _MAX_FILES."""
    out: list[Path] = []
    for top, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS)
        if "Chart.yaml" in files:
            dirs[:] = []
            continue
        out += [Path(top) / f for f in sorted(files) if f.endswith((".yaml", ".yml", ".gotmpl", ".tpl"))]
        if len(out) > _MAX_FILES:
            break
    return out


def _references(path: Path, text: str) -> list[Path]:
    """The files a state file's `bases:` and `helmfiles:` name (globs expanded)."""
    return [
        p
        for key in ("bases", "helmfiles")
        for item, _, _ in listed(text, key)
        for p in expand(path.parent, item)
    ]


def split_v0(text: str) -> tuple[str, list[int]]:
    """helmfile v0's layout (environments: and releases: in one YAML part, which helmfile v1 refuses)
    as v1 wants it: the environments: block moved to a part of its own before the rest; and the line
    of each such part's releases:."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    found: list[int] = []
    start = 0
    for end in [*(i for i, line in enumerate(lines) if _PART.match(line)), len(lines)]:
        part = lines[start:end]
        tops = {
            found_key.group("key"): i
            for i, line in enumerate(part)
            if not line.startswith((" ", "\t", "#", "-", "{")) and (found_key := _KEY.match(line))
        }
        if "environments" in tops and "releases" in tops:
            begin = tops["environments"]
            after = [i for i in tops.values() if i > begin]
            stop = min(after) if after else len(part)
            block = [line if line.endswith("\n") else line + "\n" for line in part[begin:stop]]
            out += [*block, "---\n", *part[:begin], *part[stop:]]
            found.append(start + tops["releases"] + 1)
        else:
            out += part
        if end < len(lines):
            out.append(lines[end])
        start = end + 1
    return "".join(out), found


def strip(text: str) -> tuple[str, list[tuple[int, str, str | None]]]:
    """The state text with every `hooks:` emptied and every release's `dependencies:` removed, and
    (line, key, release name) of each. Line by line, by indentation, so that templates need not be
    rendered first; template control lines inside a removed block are kept (they pair with others)."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    removed: list[tuple[int, str, str | None]] = []
    stack: list[tuple[int, str]] = []
    names: dict[int, str] = {}  # column -> the name: of the item that key column belongs to
    depth = 0  # open flow brackets
    i = 0
    while i < len(lines):
        line = lines[i]
        body = line.lstrip(" ")
        indent = len(line) - len(body)
        i += 1
        if _PART.match(line):
            stack, names, depth = [], {}, 0
            out.append(line)
            continue
        if depth > 0:  # a line of a flow collection ({...} or [...] over several lines): strip_flow's
            depth += _flow_depth(line)
            out.append(line)
            continue
        found = _KEY.match(body) if body.strip() and not body.startswith(("#", "{{")) else None
        if not found:
            depth += _flow_depth(line)
            out.append(line)
            continue
        col = indent + len(found.group("dash"))
        while stack and stack[-1][0] >= col:
            stack.pop()
        if found.group("dash"):
            names.pop(col, None)
        key = found.group("key").strip("\"'")
        if key == "name":
            names[col] = body[found.end() :].strip().strip("\"'")
        parents = [k for _, k in stack]
        in_release = len(parents) == 1 and parents[0] == "releases"
        drop = not any(k in _VALUE_KEYS for k in parents) and (
            key == "hooks" or (key == "dependencies" and in_release)
        )
        if not drop:
            depth += _flow_depth(line)
            stack.append((col, key))
            out.append(line)
            continue
        release = (names.get(col) or _name_after(lines, i, col)) if in_release else None
        removed.append((i, key, release))
        anchor = re.match(r"\s*(&[\w-]+)", body[found.end() :])
        out.append(f"{' ' * indent}{found.group('dash')}{key}: {anchor.group(1) + ' ' if anchor else ''}[]\n")
        i = _skip_block(lines, i, col, bool(found.group("dash")), out)
    return "".join(out), removed


def strip_flow(text: str) -> tuple[str, list[tuple[int, str, str | None]]]:
    """What `strip` leaves: a `hooks:` written inside a flow mapping (`- {name: a, hooks: [...]}`),
    found by parsing each part with its template actions blanked out (same length, so positions
    hold); a part that does not parse so was handled by `strip` alone."""
    blanked = _ACTION.sub(lambda m: re.sub(r"[^\n]", "x", m.group(0)), text)
    spans: list[tuple[int, int, str | None]] = []
    for part in _PARTS.finditer(blanked):
        try:
            root = yaml.compose(part.group(0), Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            continue
        spans += _hook_spans(root, part.start(), False)
    removed: list[tuple[int, str, str | None]] = []
    for start, end, release in sorted(spans, key=lambda s: s[0], reverse=True):
        text = text[:start] + "[]" + text[end:]
        removed.append((text.count("\n", 0, start) + 1, "hooks", release))
    return text, sorted(removed, key=lambda r: r[0])


def _hook_spans(node: yaml.Node | None, offset: int, in_values: bool) -> list[tuple[int, int, str | None]]:
    out: list[tuple[int, int, str | None]] = []
    if isinstance(node, yaml.MappingNode):
        names = [v.value for k, v in node.value if k.value == "name" and isinstance(v, yaml.ScalarNode)]
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else ""
            empty = isinstance(value, yaml.SequenceNode) and not value.value
            if name == "hooks" and not in_values and not empty:
                start, end = offset + value.start_mark.index, offset + value.end_mark.index
                out.append((start, end, names[0] if names else None))
            else:
                out += _hook_spans(value, offset, in_values or name in _VALUE_KEYS)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            out += _hook_spans(item, offset, in_values)
    return out


def _flow_depth(line: str) -> int:
    """How many flow brackets the line opens (negative: closes), quoted text, template actions and
    comments left out."""
    text = _ACTION.sub("", line)
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'', "", text)
    text = re.sub(r"(^|\s)#.*", "", text)
    return text.count("[") + text.count("{") - text.count("]") - text.count("}")


def _skip_block(lines: list[str], i: int, col: int, dash: bool, out: list[str]) -> int:
    """The index of the first line after the block of the key at column `col` (template control
    lines in it are kept in `out`)."""
    while i < len(lines):
        nxt = lines[i]
        nb = nxt.lstrip(" ")
        ni = len(nxt) - len(nb)
        if _PART.match(nxt):
            break
        if not nb.strip() or nb.startswith("#"):
            i += 1
            continue
        if nb.startswith("{{"):
            if _CONTROL.match(nb):
                out.append(nxt)
            i += 1
            continue
        if ni > col or (ni == col and nb.startswith("-") and not dash):
            i += 1
            continue
        break
    return i


def _name_after(lines: list[str], start: int, col: int) -> str | None:
    for line in lines[start:]:
        body = line.lstrip(" ")
        indent = len(line) - len(body)
        found = _KEY.match(body)
        if found and indent + len(found.group("dash")) < col:
            return None
        if found and found.group("key") == "name" and indent == col:
            return body[found.end() :].strip().strip("\"'")
    return None


def split_env_defaults(text: str) -> str:
    """The text with each `env "VAR"` read with a non-empty default renamed to env_name(VAR, x)."""

    def rename(match: re.Match[str], default_group: int) -> str:
        default = re.sub(r"\\(.)", r"\1", match.group(default_group) or "")
        if not default or match.group(0).startswith("requiredEnv"):
            return match.group(0)
        start, end = (i - match.start() for i in match.span(2))
        whole = match.group(0)
        return whole[:start] + env_name(match.group(2), default) + whole[end:]

    def action(match: re.Match[str]) -> str:
        text = ENV_READ.sub(lambda m: rename(m, 3), match.group(0))
        return DEFAULT_ENV.sub(lambda m: rename(m, 1), text)

    return _ACTION.sub(action, text)


def disable_exec(text: str) -> tuple[str, list[int]]:
    """The text with each `exec`/`envExec` call inside a template action renamed to a function that
    does not exist, and the lines where they were."""
    lines: list[int] = []

    def action(match: re.Match[str]) -> str:
        if not _EXEC.search(match.group(0)):
            return match.group(0)
        lines.append(text.count("\n", 0, match.start()) + 1)
        return _EXEC.sub(EXEC_DISABLED, match.group(0))

    return _ACTION.sub(action, text), lines


def _materialise(box: Sandbox, path: Path, text: str | None) -> None:
    """Make `path` (a file, written with `text`; or a directory) real in the copy: each directory
    above it becomes a real directory whose other entries are symlinks to the user's."""
    for directory in [*reversed(path.parents), *([path] if text is None else [])]:
        view = box.view(directory) if directory != Path("/") else box.root / "tree"
        if view.is_symlink():
            view.unlink()
        if not view.is_dir():
            view.mkdir(parents=True)
            try:
                entries = sorted(directory.iterdir())
            except OSError:
                entries = []
            for entry in entries:
                link = view / entry.name
                if not link.exists() and not link.is_symlink():
                    link.symlink_to(entry)
    if text is not None:
        view = box.view(path)
        if view.is_symlink() or view.exists():
            view.unlink()
        view.write_text(text, encoding="utf-8")


_NESTED_IN = re.compile(r"in \.helmfiles\[\d+\]: in ([^:\s]+):")


def nested_template(box: Sandbox, top: Path, stderr: str) -> tuple[Path, Path, str] | None:
    """The nested state file helmfile v1 read as plain YAML though it is a template ("Add the
    .gotmpl file extension", after `in .helmfiles[N]: in PATH:`), from the copy of the top state file
    at `top`: (the user's file that names it, the user's nested file, the path as that file writes it)."""
    found = _NESTED_IN.findall(stderr)
    if not found:
        return None
    referencing, directory = top, top.parent
    for written in found[:-1]:
        referencing = directory / written
        directory = referencing.parent
    nested = directory / found[-1]
    if not nested.is_file() or nested.name.endswith(".gotmpl"):
        return None
    return box.original(str(referencing)), box.original(str(nested)), found[-1]


def rename_template(box: Sandbox, referencing: Path, nested: Path, written: str) -> None:
    """The copy of `nested` named NAME.gotmpl, and the copy of the file that names it naming that."""
    text = box.view(nested).read_text(encoding="utf-8")
    plain = box.view(nested)
    box.renamed[nested.resolve()] = plain.with_name(plain.name + ".gotmpl")
    _materialise(box, nested.resolve(), text)
    parent = box.view(referencing).read_text(encoding="utf-8")
    renamed = re.sub(re.escape(written) + r"(?![\w.-])", written + ".gotmpl", parent)
    _materialise(box, referencing.resolve(), renamed)
