"""Flux as the tests see it offline: the values helm-controller computes for a HelmRelease, and the
CRDs' schemas (from the controllers' module zips, kept by tools/build) to validate exported objects."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from testing import tools


def load_objects(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def load_dir(directory: Path) -> list[dict[str, Any]]:
    return [obj for path in sorted(directory.rglob("*.yaml")) for obj in load_objects(path.read_text())]


def merge_maps(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """fluxcd/pkg/chartutil's MergeMaps: maps merge recursively, anything else replaces."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_maps(out[key], value)
        else:
            out[key] = value
    return out


def flux_values(release: Mapping[str, Any], objects: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The values helm-controller hands helm: each valuesFrom in order (whole documents: the export
    uses no targetPath), then the inline values over them. Everything passes through the API
    server as JSON first, as it would in a cluster."""
    spec = json.loads(json.dumps(release["spec"]))
    namespace = release["metadata"]["namespace"]
    result: dict[str, Any] = {}
    for ref in spec.get("valuesFrom", []):
        assert "targetPath" not in ref
        source = next(
            o
            for o in objects
            if o["kind"] == ref["kind"]
            and o["metadata"]["name"] == ref["name"]
            and o["metadata"]["namespace"] == namespace
        )
        data: Mapping[str, str] = source.get("stringData") or source["data"]
        result = merge_maps(result, yaml.safe_load(data[ref.get("valuesKey", "values.yaml")]) or {})
    return merge_maps(result, spec.get("values") or {})


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema, for every CRD both controllers ship."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for component in ("source-controller", "helm-controller"):
        for path in sorted((tools.tool_dir(component) / "crds").glob("*.yaml")):
            for crd in load_objects(path.read_text()):
                group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
                for version in crd["spec"]["versions"]:
                    schema = version["schema"]["openAPIV3Schema"]
                    out[(f"{group}/{version['name']}", kind)] = _closed(schema)
    return out


def _closed(schema: Any) -> Any:
    """The schema with every object that lists its properties closed to others: the API server
    silently prunes unknown fields, so a misspelt one would pass validation and do nothing."""
    if isinstance(schema, list):
        return [_closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _closed(v) for k, v in schema.items()}
    if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", False)
    if isinstance(schema.get("properties"), dict):  # property names, not schemas, at this level
        out["properties"] = {k: _closed(v) for k, v in schema["properties"].items()}
    return out


def validate(obj: Mapping[str, Any]) -> None:
    """Raise jsonschema.ValidationError when `obj` does not fit its CRD (KeyError: no such CRD)."""
    schema = crd_schemas()[(obj["apiVersion"], obj["kind"])]
    jsonschema.validate(json.loads(json.dumps(obj)), schema)
