"""From a helmfile state (one per environment) to deployer.yaml, the environment overlays and the
list of what could not be carried over. Pure but for reading the values files the state names.

What is the same in every environment goes to deployer.yaml; what differs becomes per-environment
settings (`environments.<env>.releases`) or overlay values (`environments/<env>/values.yaml`),
computed as the exact difference between the environment's merged values and the shared ones.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from deployer.importer import charts, flags, losses
from deployer.importer import hooks as hookconv
from deployer.importer import values as vals
from deployer.importer.conceal import Concealer
from deployer.importer.entries import release_entries
from deployer.importer.findings import WHY_NONE, Finding, Kept
from deployer.importer.repos import repositories, unusable
from deployer.importer.source import Source, State
from deployer.merge import merge_values
from deployer.yamlsource import HelmDumper

_TOP_KEYS = {
    "repositories",
    "releases",
    "helmDefaults",
    "environments",
    "commonLabels",
    "kubeVersion",
    "apiVersions",
}
_ENV_KEYS = {"values", "secrets", "kubeContext", "missingFileHandler", "missingFileHandlerConfig"}


@dataclass
class Output:
    files: dict[str, str]  # path relative to the output directory -> text
    findings: list[Finding]
    environments: list[str]


@dataclass
class Part:
    """One state file's share of the spec, before its releases are written (importer/layout.py
    puts the parts of a state file with nested ones together)."""

    head: dict[str, Any]  # repositories and defaults
    environments: dict[str, Any]
    per_env: dict[str, list[_Release]]


@dataclass
class _Release:
    """One release in one environment, converted."""

    index: int
    name: str
    namespace: str | None
    chart: str | None
    version: str | None
    needs: list[str]
    labels: dict[str, str]
    installed: bool
    settings: dict[str, Any]  # wait, timeout, atomic, helm's flags, hooks
    entries: list[vals.Entry]
    merged: dict[str, Any] = field(default_factory=dict)


class Converter:
    def __init__(
        self,
        source: Source,
        out_dir: Path,
        *,
        findings: set[Finding] | None = None,
        concealer: Concealer | None = None,
        bases: list[Path] | None = None,
    ) -> None:
        self.source = source
        self.out_dir = out_dir
        self.findings: set[Finding] = set() if findings is None else findings
        self.concealer = concealer or Concealer()
        self.markers = source.markers
        self.bases = bases or []  # the state file's bases: (their top-level hooks are its own)
        self.text_hooks: dict[str | None, list[dict[str, Any]]] = {}

    def report(
        self, state: State, path: tuple[str | int, ...], what: str, why: str, release: str = ""
    ) -> None:
        self.findings.add(self._shown(Finding(*state.locate(path, release or None), what, why)))

    def _shown(self, finding: Finding) -> Finding:
        """The finding with each marker (a helmfile message may hold one: a path made of a
        namespace read from a variable) written as the ${VAR} it stands for."""
        if not self.markers.found_in(finding.what + finding.why):
            return finding
        why = self.markers.restore(finding.why)
        return replace(
            finding, what=self.markers.restore(finding.what), why=Kept(why) if finding.note else why
        )

    # ---------------------------------------------------------------------------------------------

    def part(self) -> Part:
        states = [self.source.states[e] for e in self.source.environments]
        self.findings.update(self._shown(Finding(*note)) for note in self.source.notes)
        self.text_hooks = self._stripped_hooks()
        first = states[0]
        head: dict[str, Any] = {}
        repos = repositories(first, lambda at, what, why: self.report(first, at, what, why))
        if repos:
            head["repositories"] = repos
        defaults = self._defaults(first)
        if self.source.vars:  # sensitive variables the import wrote secret-looking values as
            defaults["vars"] = dict(self.source.vars)
        if defaults:
            head["defaults"] = defaults
        environments: dict[str, Any] = {}
        per_env = {s.environment: self._releases(s) for s in states}
        for state in states:
            self._top_level(state)
            environments[state.environment] = self._environment(state)
        return Part(head, environments, per_env)

    def releases(
        self, part: Part, elsewhere: list[str]
    ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        """The part's releases for the spec, and its overlay values per environment; `elsewhere`:
        the release names of the other parts (a name in two parts is keyed namespace/name)."""
        return self._merge_environments(part.per_env, part.environments, elsewhere)

    # ---------------------------------------------------------------------------------------------

    def _defaults(self, state: State) -> dict[str, Any]:
        helm_defaults = dict(state.data.get("helmDefaults") or {})

        def note(key: str, why: str) -> None:
            self.report(state, ("helmDefaults", key), f"helmDefaults.{key}", why)

        if "templateArgs" in helm_defaults:
            apis, kube, rest = flags.template_args(helm_defaults.pop("templateArgs"))
            carried = [f"--api-versions {a}" for a in apis] + ([f"--kube-version {kube}"] if kube else [])
            fields = ["apiVersions"] * bool(apis) + ["kubeVersion"] * bool(kube)
            if carried:
                note(
                    "templateArgs",
                    Kept(
                        flags.TEMPLATE_ARGS_KEPT.format(
                            carried=", ".join(carried), fields=" and ".join(fields)
                        )
                    ),
                )
            if rest:
                note("templateArgs", flags.TEMPLATE_ARGS_LOST.format(args=" ".join(rest)))

        out = flags.settings(helm_defaults, note)
        for key in sorted(set(helm_defaults) - {"kubeContext"}):
            if not flags.handled(key):
                note(key, WHY_NONE)
        top = self._hooks(state, state.data.get("hooks"), ("hooks",), "hooks", None)
        if top:
            out["hooks"] = top
        return out

    def _hooks(
        self, state: State, declared: Any, at: tuple[str | int, ...], what: str, release: str | None
    ) -> list[dict[str, Any]]:
        """A release's (or, with release None, the top-level) hooks: from the state of a plain file,
        from the user's file for a templated one (helmfile only saw them emptied)."""
        if self.source.templated:
            return list(self.text_hooks.get(release, []))

        def note(why: str) -> None:
            self.report(state, at, what, why, release or "")

        base, out = self.source.base_dir, self.out_dir
        return hookconv.convert(declared, top_level=release is None, base_dir=base, out_dir=out, note=note)

    def _stripped_hooks(self) -> dict[str | None, list[dict[str, Any]]]:
        if not self.source.templated:
            return {}
        found, findings = hookconv.from_stripped(
            self.source.stripped, self.source.path, self.source.shown, self.bases, self.out_dir
        )
        self.findings.update(findings)
        return found

    def _top_level(self, state: State) -> None:
        for key in sorted(set(state.data) - _TOP_KEYS - {"values", "templates"}):
            if self.source.templated and key in losses.RENDERED_BY_HELMFILE:
                continue
            if key in ("helmfiles", "bases", "hooks"):
                continue  # importer/layout.py includes and layers files; hooks go to defaults.hooks
            if key in losses.MISSING_FILE_KEYS:
                missing = losses.missing_files(state.data.get("releases") or [], self.source.base_dir)
                if why := losses.missing_file_handler(missing):
                    self.report(state, (key,), key, why)
                continue
            why = WHY_NONE if key == "apiVersions" else "unknown to the importer; not carried over"
            if state.data[key] not in (None, [], {}):
                self.report(state, (key,), key, why)
        readers = losses.template_readers(state)
        if not self.source.templated and state.data.get("values") and readers:
            self.report(state, ("values",), "values", losses.values_read_by(readers, None))

    def _environment(self, state: State) -> dict[str, Any] | None:
        out: dict[str, Any] = {}
        envs = state.data.get("environments") or {}
        env = envs.get(state.environment) or {}
        context = env.get("kubeContext") or (state.data.get("helmDefaults") or {}).get("kubeContext")
        if context:
            out["kubeContext"] = str(context)
        arg_apis, arg_kube, _ = flags.template_args(
            (state.data.get("helmDefaults") or {}).get("templateArgs")
        )
        kube = state.data.get("kubeVersion") or arg_kube
        if kube:
            out["kubeVersion"] = str(kube)
        if arg_kube and str(kube) != arg_kube:
            self.report(
                state,
                ("helmDefaults", "templateArgs"),
                "helmDefaults.templateArgs",
                f"--kube-version {arg_kube} differs from kubeVersion: {kube}, which is carried over; "
                "not carried over",
            )
        apis = state.data.get("apiVersions")
        apis = [str(a) for a in apis] if isinstance(apis, list) else []
        apis += [a for a in arg_apis if a not in apis]
        if apis:  # helmfile passes them to every render, as --api-versions
            out["apiVersions"] = apis
        for key in sorted(set(env) - _ENV_KEYS):
            self.report(
                state,
                ("environments", state.environment, key),
                f"environments.{state.environment}.{key}",
                WHY_NONE,
            )
        readers = losses.template_readers(state)
        if not self.source.templated and (env.get("values") or env.get("secrets")) and readers:
            self.report(
                state,
                ("environments", state.environment, "values"),
                f"environments.{state.environment}.values",
                losses.values_read_by(readers, state.environment),
            )
        return out or None

    # ---------------------------------------------------------------------------------------------

    def _releases(self, state: State) -> list[_Release]:
        out = []
        common_labels = {str(k): _label(v) for k, v in (state.data.get("commonLabels") or {}).items()}
        context = (state.data.get("environments") or {}).get(state.environment, {}) or {}
        env_context = context.get("kubeContext") or (state.data.get("helmDefaults") or {}).get("kubeContext")
        skipped: set[str] = set()
        left_out = unusable(state)
        for i, raw in enumerate(state.data.get("releases") or []):
            if not isinstance(raw, Mapping):
                self.report(state, ("releases", i), f"releases[{i}]", "not a mapping; skipped")
                continue
            name = str(raw.get("name", ""))
            at = ("releases", i)

            def note(key: str, why: str, name: str = name, at: tuple[str | int, ...] = at) -> None:
                self.report(state, (*at, key), f"releases[{name}].{key}", why, name)

            losses.release_keys(raw, self.source.base_dir, self.source.templated, note)
            if raw.get("kubeContext") and raw.get("kubeContext") != env_context:
                note("kubeContext", "deployer's kube context is per environment, not per release")
            repos = {str(r.get("name")) for r in state.data.get("repositories") or []}
            chart, problem = charts.chart_from(
                self.markers,
                str(raw.get("chart") or ""),
                base_dir=self.source.base_dir,
                out_dir=self.out_dir,
                repos=repos,
                unusable=left_out,
            )
            if problem:
                note("chart", problem)
            if chart is None:
                skipped.add(f"{raw.get('namespace') or ''}/{name}")
                continue
            needs = []
            for need in raw.get("needs") or []:
                parts = str(need).split("/")
                if len(parts) > 2:
                    note("needs", f"need '{need}' names a kube context; deployer's needs are namespace/name")
                    parts = parts[-2:]
                needs.append("/".join(parts))
            labels = {**common_labels, **{str(k): _label(v) for k, v in (raw.get("labels") or {}).items()}}
            installed = raw.get("installed", True) not in (False, "false")
            settings = flags.settings(raw, note)
            hooks = self._hooks(state, raw.get("hooks"), (*at, "hooks"), f"releases[{name}].hooks", name)
            if hooks:
                settings["hooks"] = hooks
            entries = release_entries(raw, self.source.base_dir, note)
            rel = _Release(
                i,
                name,
                str(raw["namespace"]) if raw.get("namespace") else None,
                chart,
                str(raw["version"]) if raw.get("version") not in (None, "") else None,
                needs,
                labels,
                installed,
                settings,
                entries,
            )
            try:
                rel.merged = vals.merged([e for e in entries])
            except vals.EntryProblem as exc:
                note("values", str(exc.message))
            out.append(rel)
        self._without_skipped(state, out, skipped)
        return out

    def _without_skipped(self, state: State, releases: list[_Release], skipped: set[str]) -> None:
        """A release the import skipped leaves the `needs:` of the others (deployer would refuse a need
        of a release that is not in the spec), each with a report line."""
        kept = {r.name for r in releases} | {f"{r.namespace or ''}/{r.name}" for r in releases}
        gone = {s.split("/", 1)[1] for s in skipped} | skipped
        for rel in releases:
            for need in list(rel.needs):
                if need in gone and need not in kept:
                    rel.needs.remove(need)
                    self.report(
                        state,
                        ("releases", rel.index, "needs"),
                        f"releases[{rel.name}].needs",
                        f"'{need}' was skipped by the import (see its line), so it is no longer in needs:; "
                        "add it back once that release is in deployer.yaml",
                        rel.name,
                    )

    # ---------------------------------------------------------------------------------------------

    def _merge_environments(
        self, per_env: Mapping[str, list[_Release]], environments: dict[str, Any], elsewhere: list[str]
    ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        keys: list[tuple[str, int]] = []
        by_env: dict[str, dict[tuple[str, int], _Release]] = {}
        for env, rels in per_env.items():
            seen: dict[str, int] = {}
            by_env[env] = {}
            for rel in rels:
                key = (rel.name, seen.get(rel.name, 0))
                seen[rel.name] = key[1] + 1
                by_env[env][key] = rel
                if key not in keys:
                    keys.append(key)
        names = [k[0] for k in keys] + elsewhere
        overlays: dict[str, dict[str, Any]] = {e: {} for e in per_env}
        releases = []
        for key in keys:
            present = {e: by_env[e][key] for e in per_env if key in by_env[e]}
            first = next(iter(present.values()))
            overlay_key = first.name if names.count(first.name) == 1 else f"{first.namespace}/{first.name}"
            releases.append(self._release(present, list(per_env), overlay_key, environments, overlays))
        return releases, overlays

    def _release(
        self,
        present: Mapping[str, _Release],
        envs: list[str],
        overlay_key: str,
        environments: dict[str, Any],
        overlays: dict[str, dict[str, Any]],
    ) -> dict[str, Any]:
        first = next(iter(present.values()))
        state = self.source.states[next(iter(present))]

        def note(what: str, why: str) -> None:
            at = ("releases", first.index, what)
            self.report(state, at, f"releases[{first.name}].{what}", why, first.name)

        spec: dict[str, Any] = {"name": first.name, "chart": self._text(first.chart)}
        version, problem = charts.version_from(
            self.markers, str(first.chart), {e: r.version for e, r in present.items()}, overlay_key
        )
        if problem:
            note("chart", problem)
        if version:
            spec["version"] = self._text(version)
        for attr, why in losses.differing(present):
            note(attr, why)
        if first.namespace:
            spec["namespace"] = self._text(first.namespace)
        if first.needs:
            spec["needs"] = first.needs
        if first.labels:
            spec["labels"] = first.labels
        spec.update(first.settings)
        if not first.installed:
            spec["installed"] = False
        for env in envs:
            override: dict[str, Any] = {}
            other = present.get(env)
            if other is None:
                override["installed"] = False
                note("name", f"not in environment '{env}': imported there as installed: false")
            else:
                if other.chart != first.chart:
                    override["chart"] = self._text(other.chart)
                if other.version and other.version != version:
                    override["version"] = self._text(other.version)
                if other.installed != first.installed:
                    override["installed"] = other.installed
            if override:
                env_spec = environments.get(env) or {}
                env_spec.setdefault("releases", {})[overlay_key] = override
                environments[env] = env_spec
        base = vals.common_entries([r.entries for r in present.values()])
        if base:
            spec["values"] = [self._conceal(self._entry(e), first, note) for e in base]
        shared = vals.merged(base)
        for env, rel in present.items():
            overlay = vals.diff(rel.merged, shared)
            if merge_values(shared, overlay) != rel.merged:
                note("values", f"the values of environment '{env}' cannot be written as an overlay")
            if any(e.kind == "secret" for e in rel.entries if not any(e.same(b) for b in base)):
                note("secrets", f"an encrypted file only environment '{env}' has is not carried over")
            if overlay:
                overlays[env][overlay_key] = self._conceal(overlay, first, note)
        return spec

    def _text(self, value: Any) -> Any:
        """A release's chart, version or namespace; one read from a variable is written quoted, so
        that ${VAR:-1.10} stays a text when deployer reads it (helmfile reads these as text)."""
        return _Text(value) if isinstance(value, str) and self.markers.found_in(value) else value

    def _conceal(self, values: Any, rel: _Release, note: Callable[[str, str], None]) -> Any:
        if not isinstance(values, Mapping):
            return values
        concealed, found = self.concealer.conceal(values, rel.name)
        for path, var in found:
            note(
                "values",
                f"{path} looks like a secret: written as ${{{var}}}, never its value; set {var} where "
                "deployer runs (a CI secret), or move the value to a sops-encrypted values file",
            )
        return concealed

    def _entry(self, entry: vals.Entry) -> Any:
        if entry.kind == "inline":
            return entry.inline
        assert entry.file is not None
        return os.path.relpath(entry.file, self.out_dir)

    # ---------------------------------------------------------------------------------------------

    def dump_spec(self, spec: Mapping[str, Any]) -> str:
        head = (
            f"# Imported from {self.source.shown} by `deployer import helmfile`.\n"
            "# What could not be carried over is listed in IMPORT-REPORT.md.\n"
        )
        return head + self.dump(spec)

    def dump(self, data: Any) -> str:
        data = _escape_interpolation(data)  # deployer.yaml and overlays are interpolated: keep ${ literal
        text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)
        return self.concealer.restore(self.markers.restore(text))


class _Text(str):
    __slots__ = ()


class _Dumper(HelmDumper):
    """HelmDumper, with a _Text always quoted."""


_Dumper.add_representer(_Text, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", str(v), style="'"))


def _escape_interpolation(value: Any) -> Any:
    if isinstance(value, str):
        return type(value)(value.replace("${", "$${"))
    if isinstance(value, Mapping):
        return {_escape_interpolation(k): _escape_interpolation(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape_interpolation(v) for v in value]
    return value


def _label(value: Any) -> str:
    return vals.go_string(value)
