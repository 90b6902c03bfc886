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
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from deployer.errors import DeployerError, Mark, SpecError, UsageError
from deployer.importer import messages, rendered_values, sops_standin
from deployer.importer.build_output import documents, unviewed, without_build_defaults
from deployer.importer.findings import Kept
from deployer.importer.markers import EnvMarkers, frozen_notes, markers_for
from deployer.importer.parts import (
    V0_WHAT,
    V0_WHY,
    Locator,
    environment_names,
    parse_parts,
    template_environment_names,
    text_locator,
)
from deployer.importer.sandbox import (
    EXEC_DISABLED,
    Sandbox,
    Stripped,
    nested_template,
    rename_template,
    sandbox,
)
from deployer.yamlsource import display_path

BUILD_TIMEOUT = 300.0
_MAX_RENAMES = 10
_PART = messages.PART
_helmfile_message = messages.helmfile_message
_message_mark = messages.message_mark


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
    named: bool = False  # the environments were named with -e (else each that fails is left out)
    # each nested state file's states as helmfile resolved them with this file's values (`helmfile
    # build` prints every sub-helmfile's): its resolved path -> environment -> state
    printed: dict[Path, dict[str, dict[str, Any]]] = field(default_factory=dict)

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
    named: bool | None = None,
    built: bool = False,
) -> Source:
    """`named`: an environment that does not resolve is an error (default: when `environments` are
    given); else it is left out with a report line. `built`: resolved by `helmfile build` even when
    plain (its bases are templates, which helmfile renders with it, not on their own)."""
    named = bool(environments) if named is None else named
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
    if not built and not is_templated(path, text):
        notes: list[tuple[str, int, str, str]] = []
        data, locate = parse_parts(text, shown, notes)
        names = list(environments) or environment_names(data) or ["default"]
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
    names = list(environments) or template_environment_names(text, shown)
    if not names and not _ENVIRONMENTS.search(text):
        names = ["default"]
    binary = find_helmfile(helmfile, env, shown)
    source = Source(path, shown, text, True, names, {}, named=named)
    helm = helm or env.get("DEPLOYER_HELM")  # else helm on PATH
    try:
        _resolve(source, binary, helm, build=True)
    except _NeedsGotmpl:  # a template named .yaml: helmfile v0 rendered it, v1 does not
        source = Source(path, shown, text, True, names, {}, named=named)
        _resolve(source, binary, helm, build=True, gotmpl=True)
        source.notes.insert(
            0, (shown, 1, GOTMPL_WHAT.format(name=path.name), Kept(GOTMPL_WHY.format(name=path.name)))
        )
    return source


def from_printed(path: Path, printed: Mapping[str, dict[str, Any]], parent: Source) -> Source:
    """A nested state file as its parent's `helmfile build` printed it: resolved with the values the
    parent hands it (its `helmfiles:` entry's, its environment's), as helmfile deploys it. Its paths
    stay relative to its own directory; the parent's markers stand for the same variables."""
    shown = display_path(path)
    text = path.read_text(encoding="utf-8")
    locate = text_locator(text, shown)
    names = [e for e in parent.environments if e in printed]  # in the parent's order
    states = {e: State(e, copy.deepcopy(printed[e]), locate) for e in names}
    return Source(
        path,
        shown,
        text,
        True,
        list(states),
        states,
        markers=parent.markers,
        stripped=parent.stripped,  # the hooks the sandbox emptied: the converter takes this file's
        named=parent.named,
    )


class _NeedsGotmpl(DeployerError):
    """helmfile v1 read a templated state file named .yaml as plain YAML, and it is not."""


GOTMPL_WHAT = "a template named {name}"
GOTMPL_WHY = (
    "helmfile v1 renders only .gotmpl state files as templates (v0 rendered every one): imported as "
    "{name}.gotmpl would be; if you keep using helmfile v1, rename it to {name}.gotmpl"
)


def _resolve(source: Source, binary: str, helm: str | None, *, build: bool, gotmpl: bool = False) -> None:
    """In the sandbox: each environment's state resolved by `helmfile build` (`build`), then the
    values helmfile renders from templates carried into the states (see rendered_values); `gotmpl`:
    the state file resolved as a template whatever its name."""
    path, shown = source.path, source.shown
    locate = text_locator(source.text, shown)
    with sandbox(path, gotmpl=gotmpl) as box:
        markers = markers_for(box.texts.values())
        box.environ(binary, helm, {})  # its bin and helm home made before helmfile runs side by side
        lock = threading.Lock()

        def run(env_name: str, command: list[str]) -> subprocess.CompletedProcess[str]:
            nonlocal markers
            proc, found = _helmfile(
                binary, box, path, shown, env_name, command=command, helm=helm, markers=markers
            )
            with lock:
                frozen = {**markers.frozen, **found.frozen}
                markers = replace(markers, required={**markers.required, **found.required}, frozen=frozen)
                for var in sops_standin.logged_variables(box.sops_log):  # its values' markers
                    markers = markers.with_required(var)
            return proc

        if not source.environments:  # environments: made by a template: helmfile names them
            source.environments = _environment_names_of(box, binary, path, shown, helm) or ["default"]
        if build:
            printed: dict[Path, dict[str, dict[str, Any]]] = {}
            for _ in range(_MAX_RENAMES):  # each nested template named .yaml: its copy renamed, again
                printed.clear()
                built = rendered_values.each(
                    lambda name: _build_or_error(run, box, path, shown, name, printed=printed),
                    source.environments,
                )
                renames = {b.renames for b in built if isinstance(b, _Unresolved) and b.renames}
                for referencing, nested, written in sorted(renames):
                    rename_template(box, referencing, nested, written)
                    what, why = GOTMPL_WHAT.format(name=nested.name), GOTMPL_WHY.format(name=nested.name)
                    source.notes.append((display_path(nested), 1, what, f"{why}, and the helmfiles: entry"))
                if not renames:
                    break
            source.printed = printed
            failed = [b for b in built if isinstance(b, _Unresolved)]
            if failed and (source.named or len(failed) == len(built)):
                if len(failed) > 1:
                    failed[0].hint = (
                        f"no environment resolves ({', '.join(e.env_name for e in failed)}): create the "
                        "files they name (or set the variables they need), then import again"
                    )
                raise failed[0]
            source.notes += [_left_out(e, locate) for e in failed]  # the others are imported
            source.states = {
                n: State(n, data, locate)
                for n, data in zip(source.environments, built, strict=True)
                if not isinstance(data, _Unresolved)
            }
            source.environments = list(source.states)
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
            result=rendered_values.Rendered(
                sops=frozenset(map(sops_standin.required_marker, sops_standin.logged_variables(box.sops_log)))
            ),
        )
        source.notes += sops_standin.notes(box.sops_log, lambda view: display_path(box.original(view)))
        if source.printed:
            rendered_values.render_nested(
                run,
                lambda stderr: _explain(box, stderr, shown, path.parent),
                source.printed,
                out_dir=box.root / "values-nested",
                texts=box.texts,
                into=carried,
            )
        source.notes += [
            (display_path(f), n, what, why) for f, n, what, why in frozen_notes(markers, box.texts)
        ]
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


_ADD_GOTMPL = re.compile(r"Add the \.gotmpl file extension")
_REQUIRED_ENV = re.compile(r"required env var `([A-Za-z_][A-Za-z0-9_]*)` is not set")


_ENVIRONMENTS = re.compile(r"^environments\s*:", re.M)


def _environment_names_of(box: Sandbox, binary: str, path: Path, shown: str, helm: str | None) -> list[str]:
    """The environments a state file's template makes, as helmfile builds them: its parts up to the
    last one that holds `environments:`, resolved on their own (no environment's values are read)."""
    view = box.view(path)
    parts = messages.PART.split(view.read_text(encoding="utf-8"))
    last = max((i for i, p in enumerate(parts) if _ENVIRONMENTS.search(p)), default=-1)
    user = path.with_name(".deployer-environments.yaml.gotmpl")
    box.renamed[user] = view.with_name(user.name)
    box.view(user).write_text("---".join(parts[: last + 1]), encoding="utf-8")
    proc, _ = _helmfile(
        binary, box, user, shown, "default", command=["build"], helm=helm, markers=EnvMarkers()
    )
    # (it exits non-zero for "no releases found", having printed the state)
    envs = next(iter(documents(proc.stdout).values()), {}).get("environments")
    return sorted(str(name) for name in envs) if isinstance(envs, dict) else []


class _Unresolved(SpecError):
    """helmfile could not resolve one environment of the state (`reason`: its message)."""

    def __init__(self, message: str, *, env_name: str, reason: str, mark: Mark, hint: str) -> None:
        super().__init__(message, mark=mark, hint=hint)
        self.env_name, self.reason = env_name, reason
        # a nested template named .yaml, that its copy named .gotmpl resolves: (names it, it, as named)
        self.renames: tuple[Path, Path, str] | None = None


def _build_or_error(*args: Any, **kwargs: Any) -> dict[str, Any] | _Unresolved:
    """`_build`'s state, or the environment's error when helmfile could not resolve it."""
    try:
        return _build(*args, **kwargs)
    except _Unresolved as exc:
        return exc


def _left_out(error: _Unresolved, locate: Locator) -> tuple[str, int, str, str]:
    """The report line of an environment helmfile could not resolve, when others could."""
    file, line = locate(("environments", error.env_name), None)
    if error.mark and error.mark.line > 1:
        file, line = error.mark.file, error.mark.line
    why = (
        f"not imported: helmfile could not resolve it ({error.reason}); the other environments were "
        f"imported: import it with -e {error.env_name} once its files exist"
    )
    return file, line, f"environment {error.env_name}", why


def _build(
    run: rendered_values.Run,
    box: Sandbox,
    path: Path,
    shown: str,
    env_name: str,
    *,
    printed: dict[Path, dict[str, dict[str, Any]]],
) -> dict[str, Any]:
    """This environment's state of the file, resolved by `helmfile build` in the sandbox; the nested
    state files' states it printed go into `printed`."""
    proc = run(env_name, ["build"])
    view = box.view(path)
    failed_to_read = f"failed to read {view.name}:" in proc.stderr or f"failed to read {view}:" in proc.stderr
    if (
        proc.returncode != 0
        and view.suffix != ".gotmpl"
        and _ADD_GOTMPL.search(proc.stderr)
        and failed_to_read
    ):
        raise _NeedsGotmpl(shown)
    if proc.returncode != 0:
        error = _build_error(box, proc.stderr or proc.stdout, shown, env_name, path.parent)
        nested = nested_template(box, view, proc.stderr) if _ADD_GOTMPL.search(proc.stderr) else None
        if nested is not None and isinstance(error, _Unresolved):
            error.renames = nested
        raise error
    # A path the templates built from PWD (the sandbox's directory) is the user's path again.
    docs = {name: unviewed(data, f"{box.root / 'tree'}/") for name, data in documents(proc.stdout).items()}
    mine = docs.get(str(box.view(path))) or (next(iter(docs.values())) if docs else {})
    for name, data in docs.items():
        if name and name != str(box.view(path)):
            original = box.original(name).resolve()
            printed.setdefault(original, {})[env_name] = without_build_defaults(data)
    return without_build_defaults(mine)


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
    environ = box.environ(binary, helm, {})
    # The sandbox's helm: the real one, but a `helm pull` of an OCI chart never reaches the registry.
    argv = [binary, "--file", str(view), "--environment", env_name]
    argv += ["--helm-binary", str(Path(environ["PATH"]) / "helm"), *command]
    # A temporary directory of its own: helmfiles run side by side (one per environment) name their
    # values files alike (RELEASE-values-HASH) and remove them when done, the other's too.
    tmp = tempfile.mkdtemp(dir=environ["TMPDIR"])
    for _ in range(20):
        try:
            proc = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                check=False,
                env={
                    **box.environ(binary, helm, markers.environ()),
                    "TMPDIR": tmp,
                    "HELMFILE_TEMPDIR": tmp,
                    "PWD": str(view.parent),  # where helmfile runs, as a shell would set it (not a marker)
                },
                cwd=view.parent,
                timeout=BUILD_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            raise DeployerError(
                f"helmfile {command[-1]} of {shown} (environment {env_name}) took more than "
                f"{BUILD_TIMEOUT:.0f}s"
            ) from None
        if proc.returncode == 0:
            break
        typed = markers.typed(messages.typed_reads(proc.stderr or "", box, view.parent))
        if typed is not None:  # a marker where a boolean, number or list belongs: the variable unset
            markers = typed
            continue
        missing = _REQUIRED_ENV.search(proc.stderr or "")
        if not missing or missing.group(1) in markers.environ():
            break
        markers = markers.with_required(missing.group(1))
    return proc, markers


def _explain(box: Sandbox, stderr: str, shown: str, base: Path) -> tuple[Mark, str]:
    """helmfile's error message, with the user's paths, and the file:line it points at."""
    message = _helmfile_message(stderr)
    for user, copy_view in box.renamed.items():  # the copy's other name: helmfile says "failed to read X:"
        message = message.replace(f"read {copy_view.name}:", f"read {user.name}:")
    for view, original in _paths_in(box, message):
        message = message.replace(view, display_path(original))
    return _message_mark(message, shown, box, base), message


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
    return _Unresolved(
        f"helmfile could not resolve {shown} for environment '{env_name}': {message}",
        env_name=env_name,
        reason=message,
        mark=mark,
        hint="fix the template (or set the variables it needs), or name the environments to import "
        "with -e ENV",
    )


def _paths_in(box: Sandbox, message: str) -> list[tuple[str, Path]]:
    prefix = str(box.root / "tree")
    found = re.findall(re.escape(prefix) + r"[^\s\"':,]*", message)
    return sorted(((p, box.original(p)) for p in set(found)), key=lambda x: -len(x[0]))


__all__ = [
    "EnvMarkers",
    "HelmfileNotFound",
    "Source",
    "State",
    "display_path",
    "find_helmfile",
    "from_printed",
    "read",
]
