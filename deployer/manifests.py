"""Rendered manifests as resources keyed by (API group, kind, namespace, name), normalized for an
exact, noise-free diff. Pure.

Normalization rules (docs/diff.md lists them for users):
1. YAML comments (helm's `# Source:` lines) and empty documents are dropped.
2. Mapping keys are sorted; the YAML is re-serialized in one style.
3. A namespaced resource without `metadata.namespace` is keyed by the release's namespace (where
   helm installs it); kinds in CLUSTER_SCOPED keep an empty namespace.
4. A Secret's `data` and `stringData` values are never shown: each key becomes
   `<redacted: N bytes>`, plus `, changed` on the new side when its value differs.
5. Only for a release Flux owns (`flux_owner`): the two labels helm-controller's post-renderer adds
   to every object's `metadata.labels` (FLUX_LABELS) are ignored; an emptied `labels` goes too.
6. Fields that `ignore:` rules name (deployer/ignore.py), in an object present on both sides.
Nothing else is ignored.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from deployer.ignore import Rule, strip

SECRET_FIELDS = ("data", "stringData")
HOOK_ANNOTATION = "helm.sh/hook"
# helm's own document separator (releaseutil.SplitManifests): a line that starts with `---`.
_SEPARATOR = re.compile(r"^---[ \t]*(?:#[^\n]*)?$\n?", re.M)
# libyaml's C loader when PyYAML has it: several times faster on large manifests, same data.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
CLUSTER_SCOPED = frozenset(
    {
        "APIService",
        "CSIDriver",
        "CSINode",
        "CertificateSigningRequest",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "Namespace",
        "Node",
        "PersistentVolume",
        "PriorityClass",
        "RuntimeClass",
        "StorageClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
        "VolumeAttachment",
    }
)


# helm-controller adds these to every object of a release a HelmRelease manages (its origin labels).
FLUX_NAME_LABEL = "helm.toolkit.fluxcd.io/name"
FLUX_NAMESPACE_LABEL = "helm.toolkit.fluxcd.io/namespace"
FLUX_LABELS = (FLUX_NAME_LABEL, FLUX_NAMESPACE_LABEL)


@dataclass(frozen=True, order=True)
class ResourceKey:
    group: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        kind = f"{self.group}/{self.kind}" if self.group else self.kind
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{kind} {where}"


def parse_manifest(text: str, namespace: str = "") -> dict[ResourceKey, dict[str, Any]]:
    resources: dict[ResourceKey, dict[str, Any]] = {}
    for doc in yaml.load_all(text, Loader=_LOADER):
        if not isinstance(doc, dict) or not doc:
            continue
        api = str(doc.get("apiVersion", ""))
        group = api.rsplit("/", 1)[0] if "/" in api else ""
        meta = doc.get("metadata") or {}
        kind = str(doc.get("kind", ""))
        ns = "" if kind in CLUSTER_SCOPED else str(meta.get("namespace") or namespace)
        key = ResourceKey(group, kind, ns, str(meta.get("name", "")))
        resources[key] = doc
    return resources


def flux_owner(manifest: str) -> str | None:
    """`namespace/name` of the HelmRelease whose helm-controller installed this manifest (its objects
    carry both FLUX_LABELS), or None."""
    if FLUX_NAME_LABEL not in manifest:  # the common case: no parse
        return None
    for doc in parse_manifest(manifest).values():
        labels = (doc.get("metadata") or {}).get("labels") or {}
        if isinstance(labels, Mapping) and all(k in labels for k in FLUX_LABELS):
            return f"{labels[FLUX_NAMESPACE_LABEL]}/{labels[FLUX_NAME_LABEL]}"
    return None


def without_labels(doc: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    meta = doc.get("metadata")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    if not isinstance(labels, Mapping) or not any(n in labels for n in names):
        return doc
    kept = {k: v for k, v in labels.items() if k not in names}
    new_meta = {k: v for k, v in meta.items() if k != "labels"}  # type: ignore[union-attr]
    if kept:
        new_meta["labels"] = kept
    return {**doc, "metadata": new_meta}


def split_documents(text: str) -> list[str]:
    """The non-empty YAML documents of a multi-document manifest, as text, in order."""
    return [d.strip("\n") for d in _SEPARATOR.split(text) if d.strip()]


def join_documents(docs: list[str]) -> str:
    """Documents written the way helm stores a release manifest."""
    return "".join(f"---\n{d}\n" for d in docs)


def split_hooks(text: str) -> tuple[str, str]:
    """`helm template` output split as a release stores it: (manifest, hooks).

    A document is a hook when it carries the `helm.sh/hook` annotation (helm's
    releaseutil.SortManifests); test hooks included. Only documents that mention the annotation
    are parsed, so a chart without hooks costs one regex split.
    """
    manifest: list[str] = []
    hooks: list[str] = []
    for doc in split_documents(text):
        (hooks if HOOK_ANNOTATION in doc and _is_hook(doc) else manifest).append(doc)
    return join_documents(manifest), join_documents(hooks)


def _is_hook(doc: str) -> bool:
    try:
        data = yaml.load(doc, Loader=_LOADER)
    except yaml.YAMLError:
        return False
    meta = data.get("metadata") if isinstance(data, dict) else None
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    return isinstance(annotations, dict) and HOOK_ANNOTATION in annotations


def _size(field: str, value: Any) -> int:
    if value is None:
        return 0
    if field == "data":
        try:
            return len(base64.b64decode(str(value), validate=True))
        except (binascii.Error, ValueError):
            return len(str(value))
    return len(str(value).encode())


def redact_secret(doc: Mapping[str, Any], other: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A Secret with every data value replaced by its size (and `changed` versus `other`)."""
    out = dict(doc)
    for field in SECRET_FIELDS:
        values = doc.get(field)
        if not isinstance(values, Mapping):
            continue
        before = (other or {}).get(field) or {}
        shown = {}
        for key, value in values.items():
            changed = other is not None and key in before and before[key] != value
            shown[key] = f"<redacted: {_size(field, value)} bytes{', changed' if changed else ''}>"
        out[field] = shown
    return out


def is_secret(key: ResourceKey) -> bool:
    return key.group == "" and key.kind == "Secret"


_C_DUMPER: Any = getattr(yaml, "CSafeDumper", None)
_DUMP_OPTIONS: dict[str, Any] = {
    "sort_keys": True,
    "default_flow_style": False,
    "allow_unicode": True,
    "width": 1000,
}


def to_yaml(doc: Mapping[str, Any]) -> str:
    # libyaml's emitter is ~5x faster (an install's plan dumps every object: 30 ms a release at
    # N=50, issue 14) and writes the same text, except that it escapes some characters PyYAML
    # prints as they are (an emoji, U+0085): a text with an escape is dumped the old way, so what a
    # diff shows never changes.
    if _C_DUMPER is not None:
        text = yaml.dump(dict(doc), Dumper=_C_DUMPER, **_DUMP_OPTIONS)
        if "\\" not in text:
            return str(text)
    return str(yaml.safe_dump(dict(doc), **_DUMP_OPTIONS))


@dataclass(frozen=True)
class ResourceChange:
    key: ResourceKey
    change: str  # added | removed | changed
    diff: str  # unified diff of normalized YAML, secrets redacted


# What `ignore:` rules left out of a diff: (object, JSON pointer) per ignored difference.
Ignored = list[tuple[ResourceKey, str]]


def diff_manifests(
    before: str,
    after: str,
    namespace: str = "",
    *,
    ignore_labels: tuple[str, ...] = (),
    rules: Sequence[Rule] = (),
    ignored: Ignored | None = None,
) -> list[ResourceChange]:
    """Every resource added, removed or changed between two manifests, sorted by key; labels named
    in `ignore_labels` are left out of both sides (rule 5), and so are the fields `rules` name in
    an object present on both sides (each difference they hid appended to `ignored`)."""
    if before == after:  # the common case of an unchanged release: nothing to parse
        return []
    old, new = parse_manifest(before, namespace), parse_manifest(after, namespace)
    if ignore_labels:
        old = {k: without_labels(v, ignore_labels) for k, v in old.items()}
        new = {k: without_labels(v, ignore_labels) for k, v in new.items()}
    return _changes(old, new, rules, ignored)


_SOURCE = re.compile(r"^# Source: (.+)$", re.M)


def diff_hooks(
    before: str,
    after: str,
    namespace: str = "",
    *,
    ignore_labels: tuple[str, ...] = (),
    rules: Sequence[Rule] = (),
    ignored: Ignored | None = None,
) -> list[ResourceChange]:
    """diff_manifests for hooks, where a hook the chart names anew on every render (podinfo's test
    pods: `-test-{{ randAlphaNum 5 | lower }}`) is not a change: a hook present on one side only is
    paired with the one hook of the same template, API group and kind on the other side, and the two
    are the same hook if they differ in `metadata.name` alone (docs/diff.md rule 8). Hooks are not
    kept as release resources, so their names carry nothing a later upgrade would reconcile."""
    if before == after:
        return []
    old, new = _sourced(before, namespace, ignore_labels), _sourced(after, namespace, ignore_labels)
    for gone, born in _renamed(old, new):
        if {**old[gone][1], "metadata": _unnamed(old[gone][1])} == {
            **new[born][1],
            "metadata": _unnamed(new[born][1]),
        }:
            del old[gone], new[born]
    return _changes({k: d for k, (_, d) in old.items()}, {k: d for k, (_, d) in new.items()}, rules, ignored)


def _sourced(
    text: str, namespace: str, ignore_labels: tuple[str, ...]
) -> dict[ResourceKey, tuple[str, dict[str, Any]]]:
    """Each resource with the template (`# Source:`) that rendered it."""
    out: dict[ResourceKey, tuple[str, dict[str, Any]]] = {}
    for doc in split_documents(text):
        source = _SOURCE.search(doc)
        for key, data in parse_manifest(doc, namespace).items():
            out[key] = (source.group(1) if source else "", without_labels(data, ignore_labels))
    return out


def _renamed(
    old: Mapping[ResourceKey, tuple[str, Any]], new: Mapping[ResourceKey, tuple[str, Any]]
) -> list[tuple[ResourceKey, ResourceKey]]:
    """Pairs (old key, new key) of the one resource of a template, group and kind on each side
    whose name differs."""

    def by_template(
        side: Mapping[ResourceKey, tuple[str, Any]], others: Mapping[ResourceKey, Any]
    ) -> dict[tuple[str, str, str, str], list[ResourceKey]]:
        groups: dict[tuple[str, str, str, str], list[ResourceKey]] = {}
        for key, (source, _doc) in side.items():
            if key not in others:
                groups.setdefault((source, key.group, key.kind, key.namespace), []).append(key)
        return groups

    gone, born = by_template(old, new), by_template(new, old)
    return [
        (keys[0], born[t][0])
        for t, keys in sorted(gone.items())
        if len(keys) == 1 and len(born.get(t, ())) == 1
    ]


def _unnamed(doc: Mapping[str, Any]) -> dict[str, Any]:
    meta = doc.get("metadata")
    return {k: v for k, v in meta.items() if k != "name"} if isinstance(meta, Mapping) else {}


def _changes(
    old: Mapping[ResourceKey, dict[str, Any]],
    new: Mapping[ResourceKey, dict[str, Any]],
    rules: Sequence[Rule] = (),
    ignored: Ignored | None = None,
) -> list[ResourceChange]:
    changes: list[ResourceChange] = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if rules and a is not None and b is not None:  # never an added or removed object
            a, b, hidden = strip(rules, key, a, b)
            if ignored is not None:
                ignored.extend((key, p) for p in hidden)
            if a == b:
                continue
        if is_secret(key):
            a_doc = redact_secret(a) if a is not None else None
            b_doc = redact_secret(b, a) if b is not None else None
        else:
            a_doc, b_doc = a, b
        a_text = to_yaml(a_doc) if a_doc is not None else ""
        b_text = to_yaml(b_doc) if b_doc is not None else ""
        change = "added" if a is None else "removed" if b is None else "changed"
        diff = "".join(
            difflib.unified_diff(
                a_text.splitlines(keepends=True),
                b_text.splitlines(keepends=True),
                fromfile=f"before: {key}" if a is not None else "/dev/null",
                tofile=f"after: {key}" if b is not None else "/dev/null",
                n=3,
            )
        )
        changes.append(ResourceChange(key, change, diff))
    return changes
