"""`deployer capabilities -e ENV` against the sandbox: the file it writes holds what the cluster
serves (built-in API versions, a CRD created for this test), sorted and stable, and an offline
render then uses it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from testing import sandbox
from testing.cluster_run import Deployer

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: monitors.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{plural: monitors, singular: monitor, kind: Monitor, listKind: MonitorList}}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
"""

GUARDED = """\
{{{{- if .Capabilities.APIVersions.Has "{group}/v1/Monitor" }}}}
apiVersion: {group}/v1
kind: Monitor
metadata:
  name: {{{{ .Release.Name }}}}
spec:
  interval: 30s
{{{{- end }}}}
"""


@pytest.fixture
def group(kubeconfig: Path, namespace: str, tmp_path: Path) -> Iterator[str]:
    """A CRD of a group only this test uses (CRDs are cluster-wide; the sandbox is shared)."""
    name = f"t{namespace[-8:]}.deployer.dev"
    manifest = tmp_path / "crd.yaml"
    manifest.write_text(CRD.format(group=name))
    sandbox.kubectl(kubeconfig, "apply", "-f", str(manifest))
    sandbox.kubectl(
        kubeconfig, "wait", "--for=condition=Established", f"crd/monitors.{name}", "--timeout=120s"
    )
    yield name
    sandbox.kubectl(kubeconfig, "delete", "crd", f"monitors.{name}", "--ignore-not-found", "--wait=false")


def project(path: Path, namespace: str, group: str) -> Path:
    chart = path / "charts" / "guarded"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: guarded\nversion: 0.1.0\n")
    (chart / "templates" / "monitor.yaml").write_text(GUARDED.format(group=group))
    (path / "deployer.yaml").write_text(
        f"environments:\n  prod: {{}}\nreleases:\n  - name: mon\n    chart: ./charts/guarded\n"
        f"    namespace: {namespace}\n"
    )
    return path


def test_capabilities_writes_what_the_cluster_serves_and_offline_renders_use_it(  # noqa: PLR0917
    tmp_path: Path, namespace: str, helm: Path, kubeconfig: Path, cache: Path, group: str
) -> None:
    deployer = Deployer(project(tmp_path / "gitops", namespace, group), helm, kubeconfig, cache)
    offline = {"KUBECONFIG": "/nonexistent/kubeconfig"}
    before = deployer("template", "-e", "prod", env=offline)
    assert before.code == 0, before.err
    assert "kind: Monitor" not in before.out
    assert f"note: {namespace}/mon test(s) the cluster's API versions" in before.err

    path = deployer.project / "environments" / "prod" / "capabilities.yaml"
    deadline = time.monotonic() + 120  # discovery serves a new CRD shortly after it is Established
    while True:
        result = deployer("capabilities", "-e", "prod")
        assert result.code == 0, result.err
        data = yaml.safe_load(path.read_text())
        if f"{group}/v1/Monitor" in data["apiVersions"] or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert result.out.startswith("environments/prod/capabilities.yaml: written (Kubernetes v1.")
    assert set(data) == {"kubeVersion", "apiVersions"}
    assert data["kubeVersion"].startswith("v1.")
    apis = data["apiVersions"]
    assert apis == sorted(apis)
    for served in (
        "v1",
        "v1/ConfigMap",
        "apps/v1",
        "apps/v1/Deployment",
        f"{group}/v1",
        f"{group}/v1/Monitor",
    ):
        assert served in apis
    assert path.read_text().startswith("# Written by `deployer capabilities -e prod`")

    text = path.read_text()
    again = deployer("capabilities", "-e", "prod")
    assert again.code == 0, again.err
    assert again.out.startswith("environments/prod/capabilities.yaml: unchanged (")
    assert path.read_text() == text  # stable: nothing to commit when the cluster did not change

    after = deployer("template", "-e", "prod", env=offline)
    assert after.code == 0, after.err
    assert "kind: Monitor" in after.out
    assert f"apiVersion: {group}/v1" in after.out
    assert "deployer capabilities" not in after.err


def test_capabilities_of_an_unknown_environment_touches_nothing(
    tmp_path: Path, namespace: str, helm: Path, kubeconfig: Path, cache: Path
) -> None:
    deployer = Deployer(project(tmp_path / "gitops", namespace, "x.deployer.dev"), helm, kubeconfig, cache)
    result = deployer("capabilities", "-e", "staging")
    assert result.code == 1
    assert result.err.startswith("error: ")
    assert "unknown environment 'staging' (known: prod)" in result.err
    assert not (deployer.project / "environments").exists()
