"""Read a helmfile state file: directly when it is plain YAML, or resolved per environment by the real
helmfile (`helmfile -e ENV build`) when it is a template (`.gotmpl`, or `{{ }}` in it).

helmfile's `requiredEnv "VAR"` and `env "VAR"` are kept as deployer's `${VAR}` interpolation instead of
being frozen at their value of the day: helmfile runs with each such variable set to a marker, and the
converter turns the markers back into `${VAR}` (see `EnvMarkers`).
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from deployer.errors import DeployerError, Mark, SpecError, UsageError
from deployer.importer import messages, rendered_values
from deployer.importer.markers import EnvMarkers, markers_for
from deployer.importer.sandbox import (
    EXEC_DISABLED,
    Sandbox,
    Stripped,
    sandbox,
)
from deployer.yamlsource import Document, PathKey, display_path, load_text

# (path in the state, release name when the path is under releases) -> (file, line)
Locator = Callable[[PathKey, str | None], tuple[str, int]]
_TEMPLATE = re.compile(r"\{\{.*?\}\}", re.S)
BUILD_TIMEOUT = 300.0
_PART = messages.PART
_helmfile_message = messages.helmfile_message
_message_mark = messages.message_mark
V0_WHAT = "environments and releases in one YAML part"
V0_WHY = (
    "helmfile v0's layout, imported as v0 read it; helmfile v1 refuses this file: if you keep using "
    "helmfile, put a `---` line between the environments: section and the rest"
)


class HelmfileNotFound(DeployerError):
    """A templated state file needs the real helmfile, and there is none."""


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
    vars: dict[str, Any] = field(default_factory=dict)  # defaults.vars: the sensitive ones the import made

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
        states = {e: State(e, copy.deepcopy(data), locate) for e in names}
        source = Source(path, shown, text, False, names, states, notes=notes)
        releases = [r for r in data.get("releases") or [] if isinstance(r, Mapping)]
        if any(rendered_values.templated(r) for r in releases):  # .gotmpl values: helmfile renders them
            try:
                binary = find_helmfile(helmfile, env, shown)
            except HelmfileNotFound:
                return source  # the converter lists each .gotmpl values file it leaves out
            _resolve(source, binary, helm or env.get("DEPLOYER_HELM"), build=False)
        return source
    names = list(environments) or _template_environment_names(text, shown) or ["default"]
    binary = find_helmfile(helmfile, env, shown)
    source = Source(path, shown, text, True, names, {})
    _resolve(source, binary, helm or env.get("DEPLOYER_HELM"), build=True)  # else helm on PATH
    return source


def _resolve(source: Source, binary: str, helm: str | None, *, build: bool) -> None:
    """In the sandbox: each environment's state resolved by `helmfile build` (`build`), then the
    values helmfile renders from templates carried into the states (see rendered_values)."""
    path, shown = source.path, source.shown
    locate = _text_locator(source.text, shown)
    with sandbox(path) as box:
        markers = markers_for(box.texts.values())
        box.environ(binary, helm, {})  # its bin and helm home made before helmfile runs side by side
        lock = threading.Lock()

        def run(env_name: str, command: list[str]) -> subprocess.CompletedProcess[str]:
            nonlocal markers
            proc, found = _helmfile(
                binary, box, path, shown, env_name, command=command, helm=helm, markers=markers
            )
            with lock:
                markers = replace(markers, required={**markers.required, **found.required})
            return proc

        if build:
            built = rendered_values.each(
                lambda name: _build(run, box, path, shown, name), source.environments
            )
            source.states = {
                n: State(n, data, locate) for n, data in zip(source.environments, built, strict=True)
            }
            source.stripped = list(box.stripped)
            source.notes += [(display_path(f), line, V0_WHAT, V0_WHY) for f, line in box.v0]
        first = next(iter(source.states.values()))
        releases = [r for r in first.data.get("releases") or [] if isinstance(r, Mapping)]

        def where(release: str) -> tuple[str, int]:
            index = next((i for i, r in enumerate(releases) if r.get("name") == release), 0)
            return first.locate(("releases", index), release)

        carried = rendered_values.render(
            run,
            lambda stderr: _explain(box, stderr, shown, path.parent),
            {name: state.data for name, state in source.states.items()},
            out_dir=box.root / "values",
            base_dir=path.parent,
            texts=box.texts,
            locate=where,
        )
    literal, required, source.vars = rendered_values.sensitive_vars(carried.hidden)
    source.markers = replace(markers, required={**markers.required, **required}, literal=literal)
    source.notes += carried.notes


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


_SOURCE = re.compile(r"^---\n#  Source: (.*)$", re.M)
_REQUIRED_ENV = re.compile(r"required env var `([A-Za-z_][A-Za-z0-9_]*)` is not set")


def _build(run: rendered_values.Run, box: Sandbox, path: Path, shown: str, env_name: str) -> dict[str, Any]:
    """This environment's state of the file, resolved by `helmfile build` in the sandbox."""
    proc = run(env_name, ["build"])
    if proc.returncode != 0:
        raise _build_error(box, proc.stderr or proc.stdout, shown, env_name, path.parent)
    docs = _documents(proc.stdout)
    mine = docs.get(str(box.view(path))) or (next(iter(docs.values())) if docs else {})
    return _without_build_defaults(mine)


def _helmfile(
    binary: str,
    box: Sandbox,
    path: Path,
    shown: str,
    env_name: str,
    *,
    command: list[str],
    helm: str | None,
    markers: EnvMarkers,
) -> tuple[subprocess.CompletedProcess[str], EnvMarkers]:
    """helmfile's `command` on this environment of the file, in the sandbox, with a marker for each
    variable the files read (and for one helmfile asks for that no file visibly reads)."""
    view = box.view(path)
    argv = [binary, "--file", str(view), "--environment", env_name]
    if helm:
        argv += ["--helm-binary", str(Path(helm).resolve())]
    argv += command
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
                f"helmfile {command[-1]} of {shown} (environment {env_name}) took more than "
                f"{BUILD_TIMEOUT:.0f}s"
            ) from None
        missing = _REQUIRED_ENV.search(proc.stderr or "")
        if proc.returncode == 0 or not missing or missing.group(1) in markers.environ():
            break
        markers = markers.with_required(missing.group(1))
    return proc, markers


def _explain(box: Sandbox, stderr: str, shown: str, base: Path) -> tuple[Mark, str]:
    """helmfile's error message, with the user's paths, and the file:line it points at."""
    message = _helmfile_message(stderr)
    for view, original in _paths_in(box, message):
        message = message.replace(view, display_path(original))
    return _message_mark(message, shown, box, base), message


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
    mark, message = _explain(box, stderr, shown, base)
    return SpecError(
        f"helmfile could not resolve {shown} for environment '{env_name}': {message}",
        mark=mark,
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
