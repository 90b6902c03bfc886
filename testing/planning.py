"""Build desired and observed releases in memory, for the pure plan and report tests."""

from __future__ import annotations

import base64
from typing import Any

import yaml

from deployer.errors import Mark
from deployer.merge import Layer, Origin, merge_layers
from deployer.observed import ENV_LABEL, PROJECT_LABEL, ObservedRelease, Status
from deployer.plan import DesiredState
from deployer.project import ChartRef, DesiredRelease


def manifest(*docs: dict[str, Any]) -> str:
    return "".join(f"---\n# Source: chart/templates/x.yaml\n{yaml.safe_dump(d)}" for d in docs)


def deployment(name: str, replicas: int, image: str = "web:1") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "c", "image": image}]}}},
    }


def secret(name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": dict(data)}


def desired(
    name: str,
    values: dict[str, Any],
    docs: list[dict[str, Any]],
    *,
    version: str = "1.0.0",
    needs: tuple[str, ...] = (),
    installed: bool = True,
    sensitive: tuple[str, ...] = (),
    namespace: str = "shop",
) -> DesiredState:
    origins = {
        path: Origin(f"environments/prod/values.yaml:{i + 1}:3") for i, path in enumerate(_paths(values))
    }
    layer = Layer(values=values, origins=origins)
    merged = merge_layers([layer])
    release = DesiredRelease(
        name=name,
        namespace=namespace,
        chart=ChartRef("local", f"/charts/{name}", name, None),
        needs=needs,
        labels={},
        installed=installed,
        timeout=300,
        wait=True,
        atomic=False,
        sensitive=sensitive,
        layers=(layer,),
        mark=Mark("deployer.yaml", 1, 1),
    )
    return DesiredState(release, merged.values, merged.origins, manifest(*docs), version)


def observed(
    name: str,
    values: dict[str, Any],
    docs: list[dict[str, Any]],
    *,
    version: str = "1.0.0",
    revision: int = 1,
    status: str = "deployed",
    environment: str | None = "prod",
    namespace: str = "shop",
) -> ObservedRelease:
    labels = {"owner": "helm", "name": name, "status": status, "version": str(revision)}
    if environment:
        labels[ENV_LABEL] = environment
        labels[PROJECT_LABEL] = "default"
    return ObservedRelease(
        name=name,
        namespace=namespace,
        revision=revision,
        status=Status(status),
        chart=name,
        chart_version=version,
        values=values,
        manifest=manifest(*docs),
        labels=labels,
        description="Install complete",
        deployed_at="2026-11-27T10:00:00Z",
        last_deployed_revision=revision if status == "deployed" else None,
    )


def _paths(values: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for key in sorted(values):
        path = (*prefix, key)
        out.append(path)
        if isinstance(values[key], dict):
            out += _paths(values[key], path)
    return out
