"""One environment of a project resolved into the releases it wants, each with its value layers.

Layers, lowest to highest: release `values:` entries in order -> each environment overlay file in
order -> command-line `--values` files and `--set` (chart defaults are helm's own lowest layer). The
command-line layers are the same for every release, applied over each release's own layers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from deployer.errors import SpecError, SpecErrors
from deployer.ignore import rules_of
from deployer.interpolation import Interpolator
from deployer.merge import Layer, leaves
from deployer.paths import resolved
from deployer.project import (
    ChartRef,
    DesiredRelease,
    Project,
    chart_ref,
    doc_layer,
    find_release,
    namespace_of,
    resolve_need,
    unknown_release,
    values_doc,
)
from deployer.provenance import with_keyring
from deployer.releaseflags import resolve_flags
from deployer.setvalues import Assignment, stack
from deployer.sops import METADATA, check_metadata, decrypted_document, is_encrypted
from deployer.sops import locate as locate_sops
from deployer.variables import Var, declared, substitute
from deployer.yamlsource import Document, display_path, load_file


def overlay_files(project: Project, env_name: str) -> list[tuple[Path, bool]]:
    """The environment's overlay files, each with whether it must exist."""
    env = project.environment(env_name)
    if env.values is not None:
        return [(resolved(project.root / f), True) for f in env.values]
    return [(resolved(project.root / "environments" / env_name / "values.yaml"), False)]


_SOPS_KEY = re.compile(rb"^sops:", re.MULTILINE)


def _load_overlay(project: Project, path: Path) -> Document:
    # An encrypted overlay is not interpolated: `${...}` in a secret is the secret's own text.
    if _SOPS_KEY.search(path.read_bytes()):
        doc = load_file(path)
        if is_encrypted(doc):
            check_metadata(doc)
            return doc
    return load_file(path, interpolate=Interpolator(project.environ))


def overlay_docs(project: Project, env_name: str) -> list[tuple[Path, Document]]:
    """The environment's overlay files, loaded and checked (encrypted ones not decrypted yet)."""
    docs: list[tuple[Path, Document]] = []
    errors: list[SpecError] = []
    known = project.names_and_keys()
    for i, (path, required) in enumerate(overlay_files(project, env_name)):
        if not path.is_file():
            if required:
                errors.append(
                    SpecError(
                        f"overlay file {display_path(path)} of environment '{env_name}' does not exist",
                        mark=project.doc.mark(("environments", env_name, "values", i)),
                        hint="overlay files are relative to deployer.yaml; create it or fix the path",
                    )
                )
            continue
        try:
            doc = _load_overlay(project, path)
        except SpecError as exc:
            errors.append(exc)
            continue
        if doc.data is None:
            doc.data = {}
        if not isinstance(doc.data, dict):
            errors.append(
                SpecError(
                    "an environment overlay must map release names to values",
                    mark=doc.mark(()),
                    hint="write 'release-name:' followed by that release's values, indented",
                )
            )
            continue
        for key, value in doc.data.items():
            if key == METADATA and is_encrypted(doc):
                continue
            if key not in known:
                errors.append(unknown_release(project, key, doc.mark((key,), key=True), "overlay key"))
            elif value is not None and not isinstance(value, dict):
                errors.append(
                    SpecError(
                        f"values for release '{key}' must be a mapping",
                        mark=doc.mark((key,)),
                        hint="indent the release's values under its name",
                    )
                )
        docs.append((path, doc))
    SpecErrors.raise_if_any(errors)
    return docs


def _values_files(project: Project) -> list[tuple[Path, Document]]:
    paths = {
        resolved(project.root / entry)
        for rel in project.spec.releases
        for entry in rel.values
        if isinstance(entry, str)
    }
    return [(p, project.values_docs[p]) for p in sorted(paths) if p in project.values_docs]


def decrypt_all(project: Project, docs: Iterable[tuple[Path, Document]]) -> None:
    """Decrypt every encrypted document not decrypted yet (sops runs in parallel), into
    project.decrypted; one error per file that fails, and nothing decrypted is kept then."""
    todo = {path: doc for path, doc in docs if is_encrypted(doc) and path not in project.decrypted}
    if not todo:
        return
    sops = locate_sops(project.sops, project.environ)

    def one(item: tuple[Path, Document]) -> Document | SpecError:
        path, doc = item
        try:
            return decrypted_document(doc, sops.decrypt(path, doc.file))
        except SpecError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=min(4, len(todo))) as pool:
        results = list(pool.map(one, todo.items()))
    SpecErrors.raise_if_any(r for r in results if isinstance(r, SpecError))
    for path, result in zip(todo, results, strict=True):
        assert isinstance(result, Document)
        project.decrypted[path] = result


def encrypted_paths(values: Mapping[str, Any]) -> set[str]:
    """The dotted path of every leaf an encrypted layer sets (its values are all sensitive)."""
    return {
        ".".join(path)
        for path, value in leaves(values)
        if value is not None and not (isinstance(value, Mapping) and not value)
    }


def _chart(project: Project, rel: Any, override: Any) -> ChartRef:
    """The release's chart in this environment (an environment may override chart and version)."""
    version = (override.version if override and override.version else None) or rel.version
    chart = (override.chart if override and override.chart else None) or rel.chart
    return chart_ref(project, chart, version)


def resolve(
    project: Project,
    env_name: str,
    extra: Sequence[Layer | Assignment] = (),
    *,
    decrypt: bool = True,
    pin: bool = True,
) -> list[DesiredRelease]:
    """Every release of the spec as this environment wants it, in spec order.

    With `pin`, repository and OCI charts get their version and digest from the lock file
    (deployer/chartlock.py); a range it does not lock is an error. Verbs that never pull a chart
    (destroy, status, rollback) and `deployer lock` itself pass pin=False.

    Encrypted values files are decrypted (with `decrypt=False`, only checked: their values are then
    sops' ciphertexts, good for nothing but counting); every leaf they set is sensitive.
    """
    env = project.environment(env_name)
    loaded = overlay_docs(project, env_name)
    if decrypt:  # every file of the environment at once: one error line per file that fails
        decrypt_all(project, [*loaded, *_values_files(project)])
    overlays = [project.decrypted.get(path, doc) if decrypt else doc for path, doc in loaded]
    defaults = project.spec.defaults
    variables = declared(project, env_name)
    out: list[DesiredRelease] = []
    errors: list[SpecError] = []
    for i, rel in enumerate(project.spec.releases):
        namespace = namespace_of(project, rel)
        key = f"{namespace}/{rel.name}"
        override = override_of(project, env, rel, key)
        layers: list[Layer] = []
        secret_paths: set[str] = set()
        for j, entry in enumerate(rel.values):
            at = ("releases", i, "values", j)
            if isinstance(entry, str):
                try:
                    vdoc = values_doc(project, entry, project.doc.mark(at))
                except SpecError as exc:
                    errors.append(exc)
                    continue
                if is_encrypted(vdoc):
                    vdoc = project.decrypted.get(resolved(project.root / entry), vdoc)
                    secret_paths |= encrypted_paths(vdoc.data)
                layers.append(doc_layer(vdoc, vdoc.data))
            else:
                layers.append(doc_layer(project.doc, entry, at))
        for odoc in overlays:
            for name in (rel.name, key):
                section = odoc.data.get(name)
                if isinstance(section, dict):
                    layers.append(doc_layer(odoc, section, (name,)))
                    if odoc.encrypted or is_encrypted(odoc):
                        secret_paths |= encrypted_paths(section)
        try:
            layers = [_substituted(layer, variables, env_name, secret_paths) for layer in layers]
            sensitive = tuple(sorted({*(defaults.sensitive or []), *(rel.sensitive or []), *secret_paths}))
            stacked = [
                _substituted(layer, variables, env_name, secret_paths)
                for layer in stack(layers, extra, sensitive)
            ]
            ref = with_keyring(project, i, rel, _chart(project, rel, override))
        except SpecError as exc:
            errors.append(exc)
            continue
        sensitive = tuple(sorted({*sensitive, *secret_paths}))
        layers.extend(stacked)
        installed = override.installed if override and override.installed is not None else rel.installed
        out.append(
            DesiredRelease(
                name=rel.name,
                namespace=namespace,
                chart=ref,
                needs=tuple(resolve_need(project, n) for n in rel.needs),
                labels=dict(rel.labels),
                installed=installed,
                timeout=_pick(rel.timeout, defaults.timeout, 300),
                wait=_pick(rel.wait, defaults.wait, True),
                atomic=_pick(rel.atomic, defaults.atomic, False),
                sensitive=sensitive,
                layers=tuple(layers),
                mark=project.doc.mark(("releases", i)),
                flags=resolve_flags(rel, defaults),
                ignore=rules_of(
                    [
                        *(defaults.ignore or []),
                        *(rel.ignore or []),
                        *(env.ignore or []),
                        *((override.ignore if override else None) or []),
                    ]
                ),
                crds=_pick(rel.crds, defaults.crds, "create"),
            )
        )
    SpecErrors.raise_if_any(errors)
    if pin:
        from deployer.chartlock import pin as pin_charts

        return pin_charts(project, env_name, out)
    return out


def _substituted(layer: Layer, variables: Mapping[str, Var], env_name: str, secret_paths: set[str]) -> Layer:
    result, secret = substitute(layer, variables, env_name)
    secret_paths |= secret
    return result


def override_of(project: Project, env: Any, rel: Any, key: str) -> Any:
    for name in (rel.name, key):
        if name in env.releases and find_release(project, name) is rel:
            return env.releases[name]
    return None


def _pick(*choices: Any) -> Any:
    return next(c for c in choices if c is not None)


def select(
    releases: Sequence[DesiredRelease], selectors: Sequence[Mapping[str, str]]
) -> list[DesiredRelease]:
    """Releases matching any selector (each selector: all its key=value pairs must match).

    Besides a release's own labels, `name`, `namespace` and `chart` are always available.
    """
    if not selectors:
        return list(releases)

    def labels(r: DesiredRelease) -> dict[str, str]:
        return {**r.labels, "name": r.name, "namespace": r.namespace, "chart": r.chart.name}

    return [r for r in releases if any(all(labels(r).get(k) == v for k, v in s.items()) for s in selectors)]
