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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deployer.errors import DeployerError, Mark, SpecError, UsageError
from deployer.yamlsource import Document, PathKey, display_path, load_text

# (path in the state, release name when the path is under releases) -> (file, line)
Locator = Callable[[PathKey, str | None], tuple[str, int]]
_PART = re.compile(r"^---[ \t]*(?:#.*)?$", re.M)
_ENV_CALL = re.compile(r"""\b(requiredEnv|env)\s+"([A-Za-z_][A-Za-z0-9_]*)\"""")
_TEMPLATE = re.compile(r"\{\{.*?\}\}", re.S)
BUILD_TIMEOUT = 300.0


class HelmfileNotFound(DeployerError):
    """A templated state file needs the real helmfile, and there is none."""


@dataclass(frozen=True)
class EnvMarkers:
    """Environment variables that helmfile reads (`env`, `requiredEnv`), each with the marker it is
    given while helmfile resolves the file, so that `${VAR}` can take the marker's place."""

    required: Mapping[str, str] = field(default_factory=dict)  # marker -> VAR
    optional: Mapping[str, str] = field(default_factory=dict)

    def environ(self) -> dict[str, str]:
        return {var: marker for marker, var in (*self.required.items(), *self.optional.items())}

    def restore(self, text: str) -> str:
        for marker, var in self.required.items():
            text = re.sub(re.escape(marker), "${" + var + "}", text, flags=re.I)
        for marker, var in self.optional.items():
            text = re.sub(re.escape(marker), "${" + var + ":-}", text, flags=re.I)
        return text

    def found_in(self, text: str) -> bool:
        return any(m.lower() in text.lower() for m in (*self.required, *self.optional))


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
        data, locate = _parse_parts(text, shown)
        names = list(environments) or _environment_names(data) or ["default"]
        states = {e: State(e, data, locate) for e in names}
        return Source(path, shown, text, False, names, states)
    names = list(environments) or _template_environment_names(text, shown) or ["default"]
    binary = find_helmfile(helmfile, env, shown)
    helm = helm or env.get("DEPLOYER_HELM")  # else helmfile's own default: helm on PATH
    markers = _markers(text)
    locate = _text_locator(text, shown)
    states = {}
    for name in names:
        data = _build(binary, path, shown, name, helm=helm, environ={**env, **markers.environ()})
        states[name] = State(name, data, locate)
    return Source(path, shown, text, True, names, states, markers)


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


def _markers(text: str) -> EnvMarkers:
    required: dict[str, str] = {}
    optional: dict[str, str] = {}
    for i, (func, var) in enumerate(sorted(set(_ENV_CALL.findall(text)))):
        # Lowercase letters and digits only: valid in names, namespaces, YAML and quotes alike.
        marker = f"zzdeployerenv{i}zz"
        (required if func == "requiredEnv" else optional)[marker] = var
    # A variable used both ways is required.
    for marker, var in list(optional.items()):
        if var in required.values():
            del optional[marker]
    return EnvMarkers(required, optional)


def _build(
    binary: str, path: Path, shown: str, env_name: str, *, helm: str | None, environ: Mapping[str, str]
) -> dict[str, Any]:
    argv = [binary, "--file", str(path), "--environment", env_name]
    if helm:
        argv += ["--helm-binary", helm]
    argv.append("build")
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=False,
            env=dict(environ),
            cwd=path.parent,
            timeout=BUILD_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise DeployerError(
            f"helmfile build of {shown} (environment {env_name}) took more than {BUILD_TIMEOUT:.0f}s"
        ) from None
    if proc.returncode != 0:
        message = _helmfile_message(proc.stderr or proc.stdout)
        raise SpecError(
            f"helmfile could not resolve {shown} for environment '{env_name}': {message}",
            mark=_message_mark(message, shown),
            hint="fix the template (or set the variables it needs), or name the environments to import "
            "with -e ENV",
        )
    docs = [d for d in yaml.safe_load_all(proc.stdout) if isinstance(d, dict)]
    if not docs:
        return {}
    # The first document is this file's state; nested `helmfiles:` follow and are reported, not merged.
    return _without_build_defaults(docs[0])


# What `helmfile build` adds to every state it prints: its own bookkeeping, and each release's
# automatic labels (deployer selects on name, namespace and chart without them).
_BUILD_KEYS = ("filepath", "helmBinary", "kustomizeBinary", "renderedvalues")


def _without_build_defaults(state: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in state.items() if k not in _BUILD_KEYS and not (k == "templates" and not v)}
    if isinstance(out.get("helmDefaults"), dict):  # Go's zero values, printed for every unset key
        out["helmDefaults"] = {k: v for k, v in out["helmDefaults"].items() if v not in (False, 0, "", None)}
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
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "err" in line.lower()]
    return " ".join((errors or lines)[-3:]) or "no message"


def _message_mark(message: str, shown: str) -> Mark:
    found = re.search(r":(\d+):(\d+)", message) or re.search(r"line (\d+)", message)
    if found:
        return Mark(shown, int(found.group(1)), int(found.group(2)) if found.lastindex == 2 else 1)
    return Mark(shown, 1, 1)


def _parse_parts(text: str, shown: str) -> tuple[dict[str, Any], Locator]:
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
        if "environments" in doc.data and "releases" in doc.data:  # as helmfile v1 refuses it
            raise SpecError(
                "environments and releases are in the same YAML part; helmfile v1 refuses this file",
                mark=doc.mark(("releases",), key=True),
                hint="put a `---` line between the environments: section and the rest, as helmfile v1 "
                "asks, then import again; nothing was written",
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
