"""Generate equivalent deployer and helmfile specs with N releases over the benchmark charts.

Every N is laid out as groups of ten releases in one namespace (groups rotate over four namespaces):
  cfg-gGGG-0           platform-config
  api-gGGG-1 .. -4     api      needs cfg-gGGG-0
  web-gGGG-5 .. -7     webapp   needs cfg-gGGG-0
  jobs-gGGG-8, -9      cronjobs needs api-gGGG-1
Each release has its own values file (values/NAME.yaml) and an inline map, and a dev and a prod
overlay. The two tools get byte-identical charts and values files in two sibling directories; only
the overlay layout differs, because the formats do: deployer reads environments/ENV/values.yaml
(release name -> overrides), helmfile gets environments/ENV/NAME.yaml per release holding exactly
the same overrides. Namespaces are `${BENCH_NS}-team-X` (deployer interpolation) and
`{{ requiredEnv "BENCH_NS" }}-team-X` (helmfile template), so one spec serves every repetition.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from charts import CHARTS_WITH_DEPENDENCIES, chart_files

NAMESPACES = ("team-a", "team-b", "team-c", "team-d")
ENVIRONMENTS = ("dev", "prod")
DEFAULTS = {"timeout": 300, "wait": True, "atomic": True}
# What one group of ten releases may use in its namespace: about 25 pods run per group (api and
# webapp with their subcharts), so 40 leaves room for a rolling update's surge.
GROUP_QUOTA = {"cpu": 2, "memory_gi": 8, "pods": 40}


def namespace_quota(n: int, namespace: int) -> dict[str, str]:
    """The ResourceQuota of one namespace, sized for the groups that share it at this N.

    Each group's platform-config release installs a quota, and Kubernetes enforces every quota of a
    namespace against all of its pods, so each must allow for the whole namespace: a fixed cap
    (once 150 pods) fails as soon as N puts more groups in one namespace (issue 14)."""
    groups = -(-n // 10)
    shared = len(range(namespace, groups, len(NAMESPACES)))
    return {
        "cpu": str(GROUP_QUOTA["cpu"] * shared),
        "memory": f"{GROUP_QUOTA['memory_gi'] * shared}Gi",
        "pods": str(GROUP_QUOTA["pods"] * shared),
    }


@dataclass(frozen=True)
class Release:
    name: str
    chart: str
    namespace: str  # suffix after "${BENCH_NS}-"
    needs: tuple[str, ...]  # "suffix/name"
    values: dict[str, Any]
    inline: dict[str, Any]
    overlays: dict[str, dict[str, Any]] = field(default_factory=dict)


def releases(n: int) -> list[Release]:
    out: list[Release] = []
    for i in range(n):
        group, k = divmod(i, 10)
        ns_index = group % len(NAMESPACES)
        ns = NAMESPACES[ns_index]
        g = f"g{group:03d}"
        team = {"bench/team": ns, "bench/group": g}
        needs: tuple[str, ...] = ()
        if k == 0:
            name, chart = f"cfg-{g}-0", "platform-config"
            values: dict[str, Any] = {
                "extraLabels": {"bench-group": g},
                "configFiles": {"flags": {"maintenance": False, "readOnly": False, "canary": k + 5}},
            }
            overlays = {
                "dev": {"environment": "dev", "quota": namespace_quota(n, ns_index)},
                "prod": {"environment": "prod", "configFiles": {"regions": {"primary": "eu-west-1"}}},
            }
        elif k <= 4:
            name, chart, needs = f"api-{g}-{k}", "api", (f"{ns}/cfg-{g}-0",)
            values = {
                "image": {"tag": f"2.3.{k}"},
                "extraLabels": {"bench-group": g},
                "configFiles": {"database": {"name": f"api{k}", "pool": 10 + k}},
                "secrets": {"apiKey": f"key-{g}-{k}"},
            }
            overlays = {
                "dev": {"config": {"logLevel": "debug"}, "cache": {"maxMemory": "32mb"}},
                "prod": {
                    "config": {"logLevel": "warn"},
                    "resources": {"limits": None, "requests": {"cpu": "20m", "memory": "64Mi"}},
                    "secrets": {"apiKey": f"prod-key-{g}-{k}"},
                },
            }
        elif k <= 7:
            name, chart, needs = f"web-{g}-{k}", "webapp", (f"{ns}/cfg-{g}-0",)
            values = {
                "image": {"tag": f"3.2.{k}"},
                "extraLabels": {"bench-group": g},
                "ingress": {"host": f"web-{g}-{k}.example.com"},
                "config": {"features": {"checkout": k % 2 == 0}},
            }
            overlays = {
                "dev": {"ingress": {"enabled": False}, "config": {"logLevel": "debug"}},
                "prod": {
                    "config": {"logLevel": "warn"},
                    "env": {"GOMAXPROCS": "2"},
                    "sidecar": {"proxy": {"logLevel": "error"}},
                },
            }
        else:
            name, chart, needs = f"jobs-{g}-{k}", "cronjobs", (f"{ns}/api-{g}-1",)
            values = {
                "extraLabels": {"bench-group": g},
                "jobs": {"cleanup": {"schedule": f"{k} 3 * * *", "args": ["cleanup", "--older-than=7d"]}},
            }
            overlays = {
                "dev": {"secrets": {"s3SecretKey": "dev-secret"}},
                "prod": {"jobs": {"report": None}, "secrets": {"s3SecretKey": "prod-secret"}},
            }
        out.append(Release(name, chart, ns, needs, values, {"podAnnotations": team}, overlays))
    return out


def _dump(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))


def _common_files(root: Path, rels: list[Release], helm: Path) -> None:
    for rel_path, text in chart_files().items():
        target = root / "charts" / rel_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    for chart in CHARTS_WITH_DEPENDENCIES:
        # Build the file:// subchart archive once, as a repository would have it committed.
        subprocess.run(
            [str(helm), "dependency", "build", str(root / "charts" / chart)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    for rel in rels:
        _dump(root / "values" / f"{rel.name}.yaml", rel.values)


def write_deployer(root: Path, rels: list[Release], helm: Path) -> None:
    _common_files(root, rels, helm)
    spec: dict[str, Any] = {
        "defaults": {"namespace": "${BENCH_NS}-team-a", **DEFAULTS},
        "environments": {env: {} for env in ENVIRONMENTS},
        "releases": [
            {
                "name": r.name,
                "chart": f"./charts/{r.chart}",
                "namespace": f"${{BENCH_NS}}-{r.namespace}",
                **({"needs": [f"${{BENCH_NS}}-{n}" for n in r.needs]} if r.needs else {}),
                "labels": {"chart": r.chart},
                "values": [f"values/{r.name}.yaml", r.inline],
            }
            for r in rels
        ],
    }
    _dump(root / "deployer.yaml", spec)
    for env in ENVIRONMENTS:
        _dump(root / "environments" / env / "values.yaml", {r.name: r.overlays[env] for r in rels})


def write_helmfile(root: Path, rels: list[Release], helm: Path) -> None:
    _common_files(root, rels, helm)
    ns = '{{ requiredEnv "BENCH_NS" }}'
    head = yaml.safe_dump({"environments": {env: {} for env in ENVIRONMENTS}}, sort_keys=False)
    body: dict[str, Any] = {
        "helmDefaults": {**DEFAULTS, "createNamespace": True},
        "releases": [
            {
                "name": r.name,
                "namespace": f"{ns}-{r.namespace}",
                "chart": f"./charts/{r.chart}",
                **({"needs": [f"{ns}-{n}" for n in r.needs]} if r.needs else {}),
                "labels": {"chart": r.chart},
                "values": [
                    f"values/{r.name}.yaml",
                    r.inline,
                    f"environments/{{{{ .Environment.Name }}}}/{r.name}.yaml",
                ],
            }
            for r in rels
        ],
    }
    text = head + "---\n" + yaml.safe_dump(body, sort_keys=False, width=200)
    (root / "helmfile.yaml.gotmpl").write_text(text)
    for env in ENVIRONMENTS:
        for r in rels:
            _dump(root / "environments" / env / f"{r.name}.yaml", r.overlays[env])


def generate(work: Path, n: int, helm: Path) -> tuple[Path, Path]:
    """(deployer dir, helmfile dir) for N releases, freshly written under `work`."""
    base = work / f"n{n}"
    if base.exists():
        shutil.rmtree(base)
    rels = releases(n)
    write_deployer(base / "deployer", rels, helm)
    write_helmfile(base / "helmfile", rels, helm)
    return base / "deployer", base / "helmfile"


def changed_release(n: int) -> str:
    """The release whose values file the 'one release changed' diff edits."""
    return releases(n)[1].name


def change_values(spec_dir: Path, release: str) -> tuple[Path, str]:
    """Bump one value of `release` (replicaCount 1 -> 2); returns (file, original text) to restore."""
    path = spec_dir / "values" / f"{release}.yaml"
    original = path.read_text()
    data = yaml.safe_load(original)
    data["replicaCount"] = 2
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path, original
