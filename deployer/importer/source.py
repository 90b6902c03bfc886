"""Read a helmfile state file: directly when it is plain YAML, or resolved per environment by the real
helmfile (`helmfile -e ENV build`) when it is a template (`.gotmpl`, or `{{ }}` in it).

helmfile's `requiredEnv "VAR"` and `env "VAR"` are kept as deployer's `${VAR}` interpolation instead of
being frozen at their value of the day: helmfile runs with each such variable set to a marker, and the
converter turns the markers back into `${VAR}` (see `EnvMarkers`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deployer.errors import DeployerError, Mark, SpecError, UsageError
from deployer.importer.sandbox import EXEC_DISABLED, Sandbox, Stripped, sandbox
from deployer.yamlsource import Document, PathKey, display_path, load_text

# (path in the state, release name when the path is under releases) -> (file, line)
Locator = Callable[[PathKey, str | None], tuple[str, int]]
_PART = re.compile(r"^---[ \t]*(?:#.*)?$", re.M)
_TEMPLATE = re.compile(r"\{\{.*?\}\}", re.S)
BUILD_TIMEOUT = 300.0
V0_WHAT = "environments and releases in one YAML part"
V0_WHY = (
    "helmfile v0's layout, imported as v0 read it; helmfile v1 refuses this file: if you keep using "
    "helmfile, put a `---` line between the environments: section and the rest"
)


class HelmfileNotFound(DeployerError):
    """A templated state file needs the real helmfile, and there is none."""


@dataclass(frozen=True)
class EnvMarkers:
    """Environment variables that helmfile reads (`env`, `requiredEnv`), each with the marker it is
    given while helmfile resolves the file, so that `${VAR}` (or `${VAR:-default}` for `env "VAR" |
    default "x"`) can take the marker's place. helmfile never sees the variables' values."""

    required: Mapping[str, str] = field(default_factory=dict)  # marker -> VAR
    optional: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, str] = field(default_factory=dict)  # marker -> default, for optional

    def environ(self) -> dict[str, str]:
        return {var: marker for marker, var in (*self.required.items(), *self.optional.items())}

    def restore(self, text: str) -> str:
        for marker, var in self.required.items():
            text = _replace(text, marker, "${" + var + "}")
        for marker, var in self.optional.items():
            text = _replace(text, marker, "${" + var + ":-" + self.defaults.get(marker, "") + "}")
        return text

    def found_in(self, text: str) -> bool:
        return any(m.lower() in text.lower() for m in (*self.required, *self.optional))

    def with_required(self, var: str) -> EnvMarkers:
        marker = f"zzdeployerenv{len(self.required) + len(self.optional)}zz"
        return EnvMarkers({**self.required, marker: var}, self.optional, self.defaults)


def _replace(text: str, marker: str, by: str) -> str:
    return re.compile(re.escape(marker), re.I).sub(lambda _: by, text)


@dataclass
class State:
    """One environment's view of the state file."""

    environment: str
    data: dict[str, Any]
    locate: Locator


@dataclass
class Source:
    path: Path
    shown: str  # as the report names it
    text: str
    templated: bool
    environments: list[str]
    states: dict[str, State]
    markers: EnvMarkers = field(default_factory=EnvMarkers)
    stripped: list[Stripped] = field(default_factory=list)  # keys emptied before helmfile read them
    notes: list[tuple[str, int, str, str]] = field(default_factory=list)  # (file, line, what, why)

    @property
    def base_dir(self) -> Path:
        return self.path.parent


def is_templated(path: Path, text: str) -> bool:
    return path.suffix == ".gotmpl" or "{{" in text


def read(
    path: Path,
    *,
    environments: Sequence[str] = (),
    helmfile: str | None = None,
    helm: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Source:
    env = dict(os.environ if environ is None else environ)
    shown = display_path(path)
    if path.is_dir():
        candidates = [path / "helmfile.yaml", path / "helmfile.yaml.gotmpl"]
        path = next((c for c in candidates if c.is_file()), candidates[0])
        shown = display_path(path)
    if not path.is_file():
        raise UsageError(
            f"no helmfile state file at {shown}",
            hint="run in the directory that holds helmfile.yaml, or pass its path: "
            "deployer import helmfile path/to/helmfile.yaml",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{shown} is not UTF-8 text ({exc.reason})", mark=Mark(shown, 1, 1)) from None
    if not is_templated(path, text):
        notes: list[tuple[str, int, str, str]] = []
        data, locate = _parse_parts(text, shown, notes)
        names = list(environments) or _environment_names(data) or ["default"]
        states = {e: State(e, data, locate) for e in names}
        return Source(path, shown, text, False, names, states, notes=notes)
    names = list(environments) or _template_environment_names(text, shown) or ["default"]
    binary = find_helmfile(helmfile, env, shown)
    helm = helm or env.get("DEPLOYER_HELM")  # else helmfile's own default: helm on PATH
    locate = _text_locator(text, shown)
    states = {}
    with sandbox(path) as box:
        markers = _markers(box.texts.values())
        for name in names:
            data, markers = _build(binary, box, path, shown, name, helm=helm, markers=markers)
            states[name] = State(name, data, locate)
        stripped = list(box.stripped)
        notes = [(display_path(f), line, V0_WHAT, V0_WHY) for f, line in box.v0]
    return Source(path, shown, text, True, names, states, markers, stripped=stripped, notes=notes)


def find_helmfile(flag: str | None, environ: Mapping[str, str], shown: str) -> str:
    candidate = flag or environ.get("DEPLOYER_HELMFILE") or shutil.which("helmfile", path=environ.get("PATH"))
    if candidate and os.access(candidate, os.X_OK) and Path(candidate).is_file():
        return str(candidate)
    where = f"'{candidate}' is not an executable file" if candidate else "none was found on PATH"
    raise HelmfileNotFound(
        f"{shown} is a template (Go templates or .gotmpl): resolving it needs the helmfile binary, "
        f"and {where}",
        hint="install helmfile, or point at one with --helmfile PATH or DEPLOYER_HELMFILE",
    )


_ENV_DEFAULT = re.compile(
    r"""\b(requiredEnv|env)\s+"([A-Za-z_][A-Za-z0-9_]*)"(?:\s*\|\s*default\s+"((?:[^"\\]|\\.)*)")?"""
)
_DEFAULT_ENV = re.compile(r"""\bdefault\s+"((?:[^"\\]|\\.)*)"\s+\(\s*env\s+"([A-Za-z_][A-Za-z0-9_]*)"\s*\)""")


def _markers(texts: Iterable[str]) -> EnvMarkers:
    """A marker for each variable any of the files reads; a variable read with requiredEnv anywhere is
    required, else the first default found is kept."""
    required: set[str] = set()
    defaults: dict[str, str] = {}
    for text in texts:
        for func, var, default in _ENV_DEFAULT.findall(text):
            if func == "requiredEnv":
                required.add(var)
            elif default and not defaults.get(var):
                defaults[var] = default
            else:
                defaults.setdefault(var, "")
        for default, var in _DEFAULT_ENV.findall(text):
            if not defaults.get(var):
                defaults[var] = default
    out_required: dict[str, str] = {}
    out_optional: dict[str, str] = {}
    out_defaults: dict[str, str] = {}
    for i, var in enumerate(sorted(required | set(defaults))):
        # Lowercase letters and digits only: valid in names, namespaces, YAML and quotes alike.
        marker = f"zzdeployerenv{i}zz"
        if var in required:
            out_required[marker] = var
        else:
            out_optional[marker] = var
            out_defaults[marker] = defaults[var]
    return EnvMarkers(out_required, out_optional, out_defaults)


_SOURCE = re.compile(r"^---\n#  Source: (.*)$", re.M)
_REQUIRED_ENV = re.compile(r"required env var `([A-Za-z_][A-Za-z0-9_]*)` is not set")


def _build(
    binary: str,
    box: Sandbox,
    path: Path,
    shown: str,
    env_name: str,
    *,
    helm: str | None,
    markers: EnvMarkers,
) -> tuple[dict[str, Any], EnvMarkers]:
    """This environment's state of the file, resolved by `helmfile build` in the sandbox; and the
    markers, with a variable helmfile asked for that no file visibly reads."""
    view = box.view(path)
    argv = [binary, "--file", str(view), "--environment", env_name]
    if helm:
        argv += ["--helm-binary", str(Path(helm).resolve())]
    argv.append("build")
    for _ in range(20):
        try:
            proc = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                check=False,
                env=box.environ(binary, helm, markers.environ()),
                cwd=view.parent,
                timeout=BUILD_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            raise DeployerError(
                f"helmfile build of {shown} (environment {env_name}) took more than {BUILD_TIMEOUT:.0f}s"
            ) from None
        missing = _REQUIRED_ENV.search(proc.stderr or "")
        if proc.returncode == 0 or not missing or missing.group(1) in markers.environ():
            break
        markers = markers.with_required(missing.group(1))
    if proc.returncode != 0:
        raise _build_error(box, proc.stderr or proc.stdout, shown, env_name, path.parent)
    docs = _documents(proc.stdout)
    mine = docs.get(str(view)) or (next(iter(docs.values())) if docs else {})
    return _without_build_defaults(mine), markers


def _documents(stdout: str) -> dict[str, dict[str, Any]]:
    """helmfile build's output, one state per `#  Source:` file; each sub-helmfile's state is printed
    before its parent's."""
    out: dict[str, dict[str, Any]] = {}
    found = list(_SOURCE.finditer(stdout))
    for i, match in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(stdout)
        data = yaml.safe_load(stdout[match.end() : end])
        if isinstance(data, dict):
            out.setdefault(match.group(1).strip(), data)
    if not found:
        for data in yaml.safe_load_all(stdout):
            if isinstance(data, dict):
                return {"": data}
    return out


def _build_error(box: Sandbox, stderr: str, shown: str, env_name: str, base: Path) -> DeployerError:
    if EXEC_DISABLED in stderr and box.execs:
        file, line = box.execs[0]
        where = display_path(file)
        return SpecError(
            f"{where} runs a command while helmfile renders it (exec): an import never runs what the "
            "files say to run",
            mark=Mark(where, line, 1),
            hint='replace the exec call by its value, or by {{ env "NAME" }} (imported as ${NAME}), '
            "then import again; nothing was written",
        )
    message = _helmfile_message(stderr)
    for view, original in _paths_in(box, message):
        message = message.replace(view, display_path(original))
    return SpecError(
        f"helmfile could not resolve {shown} for environment '{env_name}': {message}",
        mark=_message_mark(message, shown, box, base),
        hint="fix the template (or set the variables it needs), or name the environments to import "
        "with -e ENV",
    )


def _paths_in(box: Sandbox, message: str) -> list[tuple[str, Path]]:
    prefix = str(box.root / "tree")
    found = re.findall(re.escape(prefix) + r"[^\s\"':,]*", message)
    return sorted(((p, box.original(p)) for p in set(found)), key=lambda x: -len(x[0]))


# What `helmfile build` adds to every state it prints: its own bookkeeping, and each release's
# automatic labels (deployer selects on name, namespace and chart without them).
_BUILD_KEYS = ("filepath", "helmBinary", "kustomizeBinary", "renderedvalues")
# helmDefaults keys helmfile prints only when the file sets them (pointers in its HelmSpec): false
# and 0 are the user's (createNamespace: false, historyMax: 0).
_SET_ONLY = {"createNamespace", "historyMax", "skipSchemaValidation", "takeOwnership", "disableValidation"}


def _without_build_defaults(state: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in state.items() if k not in _BUILD_KEYS and not (k == "templates" and not v)}
    if isinstance(out.get("helmDefaults"), dict):  # Go's zero values, printed for every unset key
        out["helmDefaults"] = {
            k: v for k, v in out["helmDefaults"].items() if v not in (False, 0, "", None) or k in _SET_ONLY
        }
    for release in out.get("releases") or []:
        if isinstance(release, dict):
            release.pop("chartPath", None)  # where helmfile prepared the chart for this run
        if not isinstance(release, dict) or not isinstance(release.get("labels"), dict):
            continue
        chart = str(release.get("chart", "")).rstrip("/").rsplit("/", 1)[-1]
        automatic = {"chart": chart, "name": release.get("name"), "namespace": release.get("namespace", "")}
        labels = {k: v for k, v in release["labels"].items() if automatic.get(k, object()) != v}
        if labels:
            release["labels"] = labels
        else:
            del release["labels"]
    return out


def _helmfile_message(stderr: str) -> str:
    lines = [_KLOG.sub("", line).strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "err" in line.lower()]
    return " ".join((errors or lines)[-3:]) or "no message"


_KLOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+\s+[\w.]+:\d+\]\s*")
_AT = re.compile(r"template: [\w./-]*?:(\d+):(\d+)|\byaml: line (\d+)|\bline (\d+)")
_FILE = r"\.?/?([\w./-]+?\.(?:ya?ml\.gotmpl|ya?ml|gotmpl))"
_NAMED = re.compile(r"(?<![\w/.])" + _FILE)
_IN_STATE = re.compile(r"\bin " + _FILE + r"(?=:)")
_VALUES_FILE = re.compile(r"(?:values file \"|render \[)" + _FILE + r"(?=[\"\]])")


def _message_mark(message: str, shown: str, box: Sandbox | None = None, base: Path | None = None) -> Mark:
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
    starts = [0] + [m.end() + 1 for m in _PART.finditer(text)]
    return text.count("\n", 0, starts[part]) if part < len(starts) else 0


def _parse_parts(
    text: str, shown: str, notes: list[tuple[str, int, str, str]]
) -> tuple[dict[str, Any], Locator]:
    """helmfile's parts (YAML documents separated by ---) merged as helmfile merges them (mergo with
    override and appended lists), with the position of every key kept."""
    merged: dict[str, Any] = {}
    value_marks: dict[PathKey, Mark] = {}
    key_marks: dict[PathKey, Mark] = {}
    starts = [0] + [m.end() + 1 for m in _PART.finditer(text)]
    ends = [m.start() for m in _PART.finditer(text)] + [len(text)]
    for start, end in zip(starts, ends, strict=True):
        offset = text.count("\n", 0, start)
        doc = load_text("\n" * offset + text[start:end], shown)
        if doc.data is None:
            continue
        if not isinstance(doc.data, dict):
            raise SpecError(
                "a helmfile state must be a mapping (repositories, releases, environments, ...)",
                mark=doc.mark(()),
            )
        if "environments" in doc.data and "releases" in doc.data:  # helmfile v0's layout
            mark = doc.mark(("releases",), key=True)
            notes.append(
                (
                    shown,
                    mark.line,
                    V0_WHAT,
                    V0_WHY,
                )
            )
        shifts = {k: len(merged[k]) for k, v in doc.data.items() if isinstance(v, list) and k in merged}
        for marks, into in ((doc.value_marks, value_marks), (doc.key_marks, key_marks)):
            for key_path, mark in marks.items():
                into[_shift(key_path, shifts)] = mark
        merged = _merge(merged, doc.data)
    located = Document(shown, merged, value_marks, key_marks)

    def locate(key_path: PathKey, release: str | None = None) -> tuple[str, int]:
        mark = located.mark(key_path, key=True)
        return mark.file, mark.line

    return merged, locate


def _shift(key_path: PathKey, shifts: Mapping[str, int]) -> PathKey:
    if len(key_path) >= 2 and isinstance(key_path[0], str) and isinstance(key_path[1], int):
        return (key_path[0], key_path[1] + shifts.get(key_path[0], 0), *key_path[2:])
    return key_path


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(out.get(key), dict) and isinstance(value, Mapping):
            out[key] = _merge(out[key], value)
        elif isinstance(out.get(key), list) and isinstance(value, list):
            out[key] = [*out[key], *value]
        else:
            out[key] = value
    return out


def _environment_names(data: Mapping[str, Any]) -> list[str]:
    envs = data.get("environments")
    return [str(k) for k in envs] if isinstance(envs, dict) else []


def _template_environment_names(text: str, shown: str) -> list[str]:
    """The environments of a templated file, read from whichever of its parts parses once each
    `{{ }}` is blanked out (environments are rarely templated themselves)."""
    names: list[str] = []
    for part in _PART.split(text):
        blanked = _TEMPLATE.sub("x", part)
        try:
            data = yaml.safe_load(blanked)
        except yaml.YAMLError:
            continue
        if isinstance(data, dict):
            names += [n for n in _environment_names(data) if n not in names and "{" not in n]
    return names


def _text_locator(text: str, shown: str) -> Locator:
    """Positions in a templated file, found by searching its text (helmfile's output has none):
    a release by its `name:`, a key by its name after that."""
    lines = text.splitlines()
    names: dict[str, int] = {}
    for i, line in enumerate(lines):
        found = re.match(r"""^\s*(?:-\s+)?name:\s*["']?([^"'\s#]+)""", line)
        if found:
            names.setdefault(found.group(1), i)

    def find(pattern: str, start: int) -> int | None:
        regex = re.compile(pattern)
        return next((i for i in range(start, len(lines)) if regex.search(lines[i])), None)

    def locate(key_path: PathKey, release: str | None = None) -> tuple[str, int]:
        line: int | None = None
        if not key_path:
            return shown, 1
        top = str(key_path[0])
        line = find(rf"^{re.escape(top)}\s*:", 0)
        rest = list(key_path[1:])
        if top == "releases" and rest and isinstance(rest[0], int):
            rest.pop(0)
            line = names.get(release or "", line)
        for key in rest:
            if isinstance(key, int):
                continue
            found = find(rf"""^\s*(?:-\s+)?["']?{re.escape(key)}["']?\s*:""", line or 0)
            if found is None:
                break
            line = found
        return shown, (line or 0) + 1

    return locate


__all__ = ["EnvMarkers", "HelmfileNotFound", "Source", "State", "display_path", "find_helmfile", "read"]
