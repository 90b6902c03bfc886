"""A helmfile setup in several files as a deployer spec in several files.

- `bases:` are layered under the state file that names them, as helmfile layers them (maps merged,
  lists appended, the state file last); a templated file's were merged by helmfile already.
- Each nested state file (`helmfiles:`, recursively) and each file of a `helmfile.d/` directory
  keeps its releases (and the repositories it brings) in a file of its own, `deployer.d/<name>.yaml`,
  that deployer.yaml `include:`s: a team that owns a sub-helmfile owns its file (CODEOWNERS).
  Every path in it (charts, values files, hook commands) is resolved from the directory of the
  helmfile it came from, and written relative to deployer.yaml, as deployer reads included files.
- A nested state's `helmDefaults` and top-level hooks go on its own releases (deployer's `defaults`
  are the whole spec's); the environments are deployer.yaml's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from deployer.errors import DeployerError
from deployer.importer import selectors
from deployer.importer.bases import message_of, read_with_bases, references
from deployer.importer.conceal import Concealer
from deployer.importer.convert import Converter, Output
from deployer.importer.findings import Finding, Kept
from deployer.importer.parts import template_environment_names
from deployer.importer.repos import new_repositories
from deployer.importer.source import EnvMarkers, Source, from_printed, is_templated
from deployer.importer.statelists import expand
from deployer.yamlsource import display_path

_STATE_SUFFIXES = (".yaml", ".yml", ".yaml.gotmpl", ".yml.gotmpl", ".gotmpl")
_MAX_DEPTH = 10
# helm's and helmfile's behaviour where a nested state sets nothing and deployer.yaml's defaults do.
_UNSET = {
    "wait": False,
    "atomic": False,
    "createNamespace": True,
    "waitForJobs": False,
    "cleanupOnFail": False,
    "force": False,
    "skipSchemaValidation": False,
    "takeOwnership": False,
    "devel": False,
    "timeout": 300,
    "historyMax": 10,
    "crds": "create",
}


@dataclass
class Unit:
    source: Source
    target: str  # the file it is written to: deployer.yaml, or deployer.d/<name>.yaml
    bases: list[Path] = field(default_factory=list)


@dataclass
class Tree:
    units: list[Unit]  # deployer.yaml's first, unless there is none (a helmfile.d/ directory alone)
    shown: str
    environments: list[str]
    findings: list[Finding] = field(default_factory=list)

    @property
    def main(self) -> Unit | None:
        first = self.units[0] if self.units else None
        return first if first is not None and first.target == "deployer.yaml" else None


def read_tree(
    path: Path, *, environments: Sequence[str] = (), helmfile: str | None = None, helm: str | None = None
) -> Tree:
    """The state file at `path` (a directory: its helmfile.yaml, else its helmfile.d/), its bases and
    its nested state files, each read as `source.read` reads one."""
    findings: list[Finding] = []
    directory = path if path.is_dir() else None
    if directory is None and not path.exists() and path.name == "helmfile.yaml":
        directory = path.parent  # the default: helmfile itself then reads helmfile.d/
    state_dir = None
    plain_names = ("helmfile.yaml", "helmfile.yaml.gotmpl")
    if directory is not None and not any((directory / n).is_file() for n in plain_names):
        state_dir = directory if directory.name == "helmfile.d" else directory / "helmfile.d"
    if state_dir is not None and state_dir.is_dir():
        files = sorted(p for p in state_dir.iterdir() if p.is_file() and p.name.endswith(_STATE_SUFFIXES))
        units: list[Unit] = []
        names = list(environments) or _environment_names(files)
        for file in files:
            reader = _Reader(state_dir.parent, names, helmfile, helm, findings, bool(environments))
            units += reader.units(file, 0, display_path(file))
        if not units:
            shown = display_path(state_dir)
            problems = "; ".join(f"{f.where}: {f.why}" for f in findings) or "it holds no state file"
            raise DeployerError(
                f"no state file of {shown} could be imported: {problems}",
                hint="fix the files, or import one of them: deployer import helmfile helmfile.d/FILE",
            )
        all_envs = names or sorted({e for u in units for e in u.source.environments}) or ["default"]
        return Tree(_distinct(units, findings), display_path(state_dir), all_envs, findings)
    if not path.exists() and path.name == "helmfile.yaml" and path.with_suffix(".yaml.gotmpl").is_file():
        path = path.with_suffix(".yaml.gotmpl")  # helmfile's default files: helmfile.yaml, then this one
    main, bases = read_with_bases(
        path, environments=environments, helmfile=helmfile, helm=helm, findings=findings
    )
    units = [Unit(main, "deployer.yaml", bases)]
    reader = _Reader(main.base_dir, main.environments, helmfile, helm, findings, bool(environments), main)
    for sub, shown, entry in _nested(main, findings, main.printed):
        units += reader.units(sub, 1, shown, selectors.effective(entry, None))
    return Tree(_distinct(units, findings), main.shown, list(main.environments), findings)


@dataclass
class _Reader:
    root: Path  # the top state file's directory
    environments: Sequence[str]
    helmfile: str | None
    helm: str | None
    findings: list[Finding]
    named: bool  # the environments were named with -e: one that does not resolve is an error
    top: Source | None = None  # the top state file: its `helmfile build` printed the nested ones

    def units(self, path: Path, depth: int, where: str, chosen: Sequence[str] | None = None) -> list[Unit]:
        """The nested state file at `path` (named at `where`, file:line) and its own nested ones;
        `chosen`: the selectors it is read with (only the releases they select are imported)."""
        printed = self.top.printed if self.top else {}
        file, _, line = where.rpartition(":")
        at = (file or where, int(line) if file and line.isdigit() else 1)
        if not path.is_file():
            why = "not imported: the file does not exist (helmfile stops on it too); add it, or remove it"
            self.findings.append(Finding(*at, f"helmfiles: {display_path(path)}", why))
            return []
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
            if self.top is not None and path.resolve() in printed and is_templated(path, text):
                source = from_printed(path, printed[path.resolve()], self.top)
                bases = [p for t, _n, _i in references(source, "bases") for p in expand(source.base_dir, t)]
            else:
                source, bases = read_with_bases(
                    path,
                    environments=self.environments,
                    helmfile=self.helmfile,
                    helm=self.helm,
                    findings=self.findings,
                    named=self.named,
                )
        except DeployerError as exc:
            if _NO_RELEASES in message_of(exc):  # helmfile skips it there too: nothing is lost
                self.findings.append(Finding(*at, f"helmfiles: {display_path(path)}", NO_RELEASES_WHY))
                return []
            self.findings.append(
                Finding(
                    *at,
                    f"helmfiles: {display_path(path)}",
                    f"not imported: {message_of(exc)}; import it on its own "
                    f"(deployer import helmfile {display_path(path)}), then move its releases into an "
                    "included file",
                )
            )
            return []
        self.findings += selectors.select(source, chosen, at, f"helmfiles: {display_path(path)} selectors")
        out = [Unit(source, _target(path, self.root), bases)]
        if depth < _MAX_DEPTH:
            for sub, shown, entry in _nested(source, self.findings, printed):
                out += self.units(sub, depth + 1, shown, selectors.effective(entry, chosen))
        return out


# helmfile's words for a state file with no release in the environment (it does not define the
# environment, or nothing is installed there): the parent's helmfile skips it the same way.
_NO_RELEASES = "no releases found that matches specified selector()"
NO_RELEASES_WHY = Kept(
    "helmfile finds no release in it for the environments imported (it does not define them, or "
    "installs nothing there), so it deploys nothing from it: nothing to import"
)


def _distinct(units: list[Unit], findings: list[Finding]) -> list[Unit]:
    """Each state file once (two parents may name the same one: deployer refuses a release defined
    twice), each written to a file of its own name."""
    out: list[Unit] = []
    seen: set[Path] = set()
    targets: set[str] = set()
    for unit in units:
        path = unit.source.path.resolve()
        if path in seen:
            why = "named by more than one helmfiles: entry; its releases are imported once"
            findings.append(Finding(unit.source.shown, 1, "helmfiles", why))
            continue
        seen.add(path)
        target, n = unit.target, 2
        while target in targets:
            target, n = unit.target.replace(".yaml", f"-{n}.yaml"), n + 1
        targets.add(target)
        out.append(replace(unit, target=target))
    return out


def _target(path: Path, root: Path) -> str:
    """deployer.d/<name>.yaml for a nested state file: its path from the top state file's directory,
    without a helmfile.yaml name or the state suffix (apps/helmfile.yaml -> deployer.d/apps.yaml)."""
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        rel = Path(path.name)
    parts = list(rel.parts)
    if parts and parts[0] == "helmfile.d":
        parts = parts[1:]
    last = parts[-1] if parts else "helmfile.yaml"
    for suffix in sorted(_STATE_SUFFIXES, key=len, reverse=True):
        if last.endswith(suffix):
            last = last[: -len(suffix)]
            break
    parts = [*parts[:-1], last] if last not in ("helmfile", "") or len(parts) == 1 else parts[:-1]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(parts)).strip("-.") or "helmfile"
    return f"deployer.d/{name}.yaml"


_NESTED_WHY = {
    "values": "values handed to a nested helmfile only reach its templates, and this import resolves each "
    "state file on its own: check the releases of its file, or put the values in its environments",
}


def _nested(
    source: Source, findings: list[Finding], printed: Mapping[Path, Any]
) -> Iterator[tuple[Path, str, Any]]:
    """Each nested state file: its path, where it is named (file:line) and its helmfiles: entry."""
    for text, line, item in references(source, "helmfiles"):
        paths = expand(source.base_dir, text)
        entry = selectors.entry(source, text, item)
        for path in paths:
            yield path, f"{source.shown}:{line}", entry
        # the values handed to them reached them when the top file's helmfile build printed them
        handed = bool(paths) and all(p.resolve() in printed for p in paths)
        if isinstance(item, Mapping):
            keys = [k for k in item if k in _NESTED_WHY and item[k] not in (None, [], {}, False)]
            for key in sorted(k for k in keys if not (handed and k == "values")):
                findings.append(Finding(source.shown, line, f"helmfiles[{text}].{key}", _NESTED_WHY[key]))


def _environment_names(files: Sequence[Path]) -> list[str]:
    """The environments the files of a helmfile.d/ directory declare, in order (helmfile runs each
    file for the environment it is given)."""
    names: list[str] = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        names += [n for n in template_environment_names(text, display_path(file)) if n not in names]
    return names


# -------------------------------------------------------------------------------------------------


def convert_tree(tree: Tree, out_dir: Path) -> Output:
    findings: set[Finding] = set(tree.findings)
    concealer = Concealer()
    markers = _all_markers(tree.units)
    converters = [
        Converter(u.source, out_dir, findings=findings, concealer=concealer, bases=u.bases)
        for u in tree.units
    ]
    for converter in converters:
        converter.markers = markers
    parts = [c.part() for c in converters]
    main = tree.main
    head: dict[str, Any] = dict(parts[0].head) if main else {}
    environments: dict[str, Any] = {}
    if main:
        environments = {
            k: {x: y for x, y in (v or {}).items() if x != "releases"}
            for k, v in parts[0].environments.items()
        }
    else:
        environments = dict.fromkeys(tree.environments)
    defaults = _gather_variables(head, parts)
    declared = {str(r["name"]): str(r["url"]) for r in head.get("repositories") or []}
    names = [[r.name for r in next(iter(p.per_env.values()), [])] for p in parts]
    files: dict[str, str] = {}
    overlays: dict[str, dict[str, Any]] = {e: {} for e in environments}
    included: dict[str, dict[str, Any]] = {}
    for i, (unit, converter, part) in enumerate(zip(tree.units, converters, parts, strict=True)):
        elsewhere = [n for j, group in enumerate(names) if j != i for n in group]
        releases, overlay = converter.releases(part, elsewhere)
        for env, values in overlay.items():
            overlays.setdefault(env, {}).update(values)
        for env, settings in part.environments.items():
            if settings and settings.get("releases"):  # per-environment release settings, any file's
                into = environments.get(env) or {}
                into.setdefault("releases", {}).update(settings["releases"])
                environments[env] = into
        if unit.target == "deployer.yaml":
            head["releases"] = releases
            continue
        _same_context(unit, part.environments, environments, findings)
        own = dict(part.head.get("defaults") or {})
        releases = [_with_defaults(r, own, defaults) for r in releases]
        doc: dict[str, Any] = {}
        state = next(iter(unit.source.states.values()))
        repos = new_repositories(part.head.get("repositories") or [], declared, state, findings)
        if repos:
            doc["repositories"] = repos
        doc["releases"] = releases
        included[unit.target] = doc
    spec = {k: v for k, v in head.items() if k != "releases"}
    if included:
        spec = {"include": list(included), **spec}
    spec["environments"] = {k: (v or {}) for k, v in environments.items()}
    spec["releases"] = head.get("releases", [])
    first = converters[0]
    files["deployer.yaml"] = first.dump_spec(spec) if main else _header(tree.shown) + first.dump(spec)
    for target, doc in included.items():
        unit = next(u for u in tree.units if u.target == target)
        files[target] = _header(unit.source.shown) + first.dump(doc)
    for env, overlay in overlays.items():
        if overlay:
            files[f"environments/{env}/values.yaml"] = first.dump(overlay)
    return Output(files, sorted(findings), list(tree.environments))


def _gather_variables(head: dict[str, Any], parts: Sequence[Any]) -> dict[str, Any]:
    """The sensitive variables the import wrote secret-looking values as, any file's, go to
    deployer.yaml's defaults.vars (an included file has releases and repositories only)."""
    variables: dict[str, Any] = {}
    for part in parts:
        own = part.head.get("defaults")
        if own and "vars" in own:
            variables.update(own.pop("vars"))
            if not own:
                part.head.pop("defaults")
    defaults = dict(head.get("defaults") or {})
    defaults.pop("vars", None)
    if variables:
        defaults["vars"] = dict(sorted(variables.items()))
    if defaults:
        head["defaults"] = defaults
    else:
        head.pop("defaults", None)
    return defaults


def _same_context(
    unit: Unit, own: Mapping[str, Any], spec: Mapping[str, Any], findings: set[Finding]
) -> None:
    """deployer has one kube context per environment: a nested state's other one is reported."""
    for env, settings in own.items():
        theirs = (settings or {}).get("kubeContext")
        ours = (spec.get(env) or {}).get("kubeContext")
        if theirs and theirs != ours:
            state = unit.source.states[env]
            findings.add(
                Finding(
                    *state.locate(("environments", env, "kubeContext"), None),
                    f"environments.{env}.kubeContext",
                    f"'{theirs}' differs from deployer.yaml's ({ours or 'none'}); deployer runs an "
                    "environment against one kube context: its releases are imported into that one; "
                    "import this file into a spec of its own if they belong to another cluster",
                )
            )


def _header(shown: str) -> str:
    return (
        f"# Imported from {shown} by `deployer import helmfile`.\n"
        "# What could not be carried over is listed in IMPORT-REPORT.md.\n"
    )


def _with_defaults(
    release: dict[str, Any], own: Mapping[str, Any], spec: Mapping[str, Any]
) -> dict[str, Any]:
    """A nested state's release with its state's helmDefaults (and top-level hooks) written on it, and
    deployer.yaml's defaults that its state does not share undone (helmfile never applied them)."""
    out = dict(release)
    extra: dict[str, Any] = {}
    for key, value in spec.items():
        if key in out or key == "hooks":
            continue
        if key in own:
            continue
        if key in _UNSET and value != _UNSET[key]:
            extra[key] = _UNSET[key]
    for key, value in own.items():
        if key == "hooks":
            out["hooks"] = [*value, *(out.get("hooks") or [])]
        elif key not in out:
            extra[key] = value
    if not extra:
        return out
    head: dict[str, Any] = {k: out[k] for k in ("name", "chart", "version", "namespace") if k in out}
    return {**head, **extra, **{k: v for k, v in out.items() if k not in head}}


def _all_markers(units: Sequence[Unit]) -> EnvMarkers:
    """One set of markers for every file written. Each templated state file was resolved on its own,
    so two of them may have given the same marker to different variables: those are renumbered."""
    required: dict[str, str] = {}
    optional: dict[str, str] = {}
    defaults: dict[str, str] = {}
    names: dict[str, str] = {}
    literal: dict[str, str] = {}
    for k, unit in enumerate(units):
        markers = unit.source.markers
        renames: dict[str, str] = {}
        for group, into in (
            (markers.required, required),
            (markers.optional, optional),
            (markers.literal, literal),
        ):
            for marker, var in group.items():
                taken = required.get(marker) or optional.get(marker) or literal.get(marker)
                new = marker if taken in (None, var) else f"zzdeployerenv{k}u{len(renames)}zz"
                renames[marker] = new
                into[new] = var
                if marker in markers.defaults:
                    defaults[new] = markers.defaults[marker]
                if marker in markers.names:
                    names[new] = markers.names[marker]
        changed = {m: n for m, n in renames.items() if m != n}
        if changed:
            for state in unit.source.states.values():
                state.data = _renamed(state.data, changed)
    return EnvMarkers(required, optional, defaults, names, literal)


def _renamed(data: Any, changed: Mapping[str, str]) -> Any:
    if isinstance(data, str):
        for old, new in changed.items():
            data = re.sub(re.escape(old), new, data, flags=re.I)
        return data
    if isinstance(data, Mapping):
        return {_renamed(k, changed): _renamed(v, changed) for k, v in data.items()}
    if isinstance(data, list):
        return [_renamed(v, changed) for v in data]
    return data
