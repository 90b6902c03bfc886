"""`crds: createReplace` on the sandbox: a chart's new CRD schema is shown summarised, applied
server-side before the upgrade (so a CR using the new field keeps it), converges, and a CRD that
drops a stored version is refused before anything changes."""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from testing.cluster_run import Deployer


def _crd(group: str, versions: list[tuple[str, bool, dict[str, Any]]]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [
                {
                    "name": name,
                    "served": True,
                    "storage": storage,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": {"type": "object", "properties": spec}},
                        }
                    },
                }
                for name, storage, spec in versions
            ],
        },
    }


SIZE = {"size": {"type": "integer"}}
SIZE_AND_COLOR = {**SIZE, "color": {"type": "string"}}


def write_chart(root: Path, group: str, version: str) -> None:
    """v1: a CRD and a CR; v2: the CRD's schema gains spec.color and the CR sets it; v3: the CRD
    serves v2 only, dropping v1 (which the API server has stored objects at)."""
    chart = root / "chart"
    (chart / "crds").mkdir(parents=True, exist_ok=True)
    (chart / "templates").mkdir(exist_ok=True)
    (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: widgets\nversion: {version}\n")
    versions = {
        "1.0.0": [("v1", True, SIZE)],
        "2.0.0": [("v1", True, SIZE_AND_COLOR)],
        "3.0.0": [("v2", True, SIZE_AND_COLOR)],
    }[version]
    (chart / "crds" / "widgets.yaml").write_text(yaml.safe_dump(_crd(group, versions)))
    api = "v2" if version == "3.0.0" else "v1"
    color = "" if version == "1.0.0" else "\n  color: blue"
    (chart / "templates" / "widget.yaml").write_text(
        f"apiVersion: {group}/{api}\nkind: Widget\nmetadata:\n  name: first\nspec:\n  size: 3{color}\n"
    )


@pytest.fixture
def project(tmp_path: Path, namespace: str, kubeconfig: Path) -> Iterator[tuple[Path, str]]:
    group = f"{namespace}.example.com"
    root = tmp_path / "gitops"
    write_chart(root, group, "1.0.0")
    (root / "deployer.yaml").write_text(
        textwrap.dedent(f"""\
        project: {namespace}
        environments:
          dev: {{}}
        releases:
          - name: widgets
            chart: ./chart
            namespace: {namespace}
            crds: createReplace
        """)
    )
    yield root, group
    kubectl(kubeconfig, "delete", "crd", f"widgets.{group}", "--ignore-not-found", "--wait=false")


def kubectl(kubeconfig: Path, *argv: str) -> str:
    return subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), *argv], check=True, capture_output=True, text=True
    ).stdout


def test_create_replace_upgrades_a_crd_and_converges(
    project: tuple[Path, str], namespace: str, helm: Path, kubeconfig: Path, cache: Path
) -> None:
    root, group = project
    deployer = Deployer(root, helm, kubeconfig, cache)
    install = deployer("diff", "-e", "dev")
    assert (
        f"      + CustomResourceDefinition widgets.{group}\n"
        "          new CRD, version(s) v1 (served, storage)\n"
    ) in install.out
    first = deployer("apply", "-e", "dev")
    assert first.code == 0, first.err
    assert deployer("diff", "-e", "dev", "--detailed-exitcode").code == 0

    write_chart(root, group, "2.0.0")
    planned = deployer("diff", "-e", "dev", "--detailed-exitcode")
    assert planned.code == 2, planned.err
    assert (
        "    CRDs (crds: createReplace; applied server-side before the release):\n"
        f"      ~ CustomResourceDefinition widgets.{group}\n"
        "          version v1: field(s) added: .spec.color\n"
    ) in planned.out
    as_json = json.loads(deployer("diff", "-e", "dev", "--output", "json").out)
    assert as_json["releases"][0]["crds"] == [
        {
            "name": f"widgets.{group}",
            "change": "changed",
            "summary": ["version v1: field(s) added: .spec.color"],
        }
    ]
    markdown = deployer("diff", "-e", "dev", "--output", "markdown").out
    assert "version v1: field(s) added: .spec.color" in markdown

    applied = deployer("apply", "-e", "dev")
    assert applied.code == 0, applied.err
    widget = json.loads(
        kubectl(kubeconfig, "-n", namespace, "get", f"widgets.{group}", "first", "-o", "json")
    )
    assert widget["spec"] == {"size": 3, "color": "blue"}  # stored, not pruned
    converged = deployer("diff", "-e", "dev", "--detailed-exitcode")
    assert converged.code == 0, converged.out + converged.err
    revision = deployer.revision("widgets", namespace)
    again = deployer("apply", "-e", "dev")
    assert again.code == 0, again.err
    assert deployer.revision("widgets", namespace) == revision

    write_chart(root, group, "3.0.0")
    crd_before = json.loads(kubectl(kubeconfig, "get", "crd", f"widgets.{group}", "-o", "json"))
    refused = deployer("diff", "-e", "dev", "--output", "json", "--detailed-exitcode")
    assert refused.code == 2, refused.err
    [rel] = json.loads(refused.out)["releases"]
    assert rel["action"] == "blocked"
    assert rel["reasons"] == [
        f"CRD widgets.{group}: the chart drops version(s) v1, still in the live CRD's status.storedVersions; "
        "the API server refuses to remove a stored version (objects stored at it would become unreadable): "
        "migrate them to another version and remove it from status.storedVersions first"
    ]
    blocked = deployer("apply", "-e", "dev")
    assert blocked.code == 1
    assert "still in the live CRD's status.storedVersions" in blocked.out + blocked.err
    crd_after = json.loads(kubectl(kubeconfig, "get", "crd", f"widgets.{group}", "-o", "json"))
    assert crd_after["metadata"]["resourceVersion"] == crd_before["metadata"]["resourceVersion"]
    assert deployer.revision("widgets", namespace) == revision


def test_skip_installs_no_crd(
    project: tuple[Path, str], namespace: str, helm: Path, kubeconfig: Path, cache: Path
) -> None:
    root, group = project
    (root / "chart" / "templates" / "widget.yaml").unlink()  # no CR: its kind would not exist
    spec = root / "deployer.yaml"
    spec.write_text(spec.read_text().replace("crds: createReplace", "crds: skip"))
    deployer = Deployer(root, helm, kubeconfig, cache)
    assert "CRD" not in deployer("diff", "-e", "dev").out
    applied = deployer("apply", "-e", "dev")
    assert applied.code == 0, applied.err
    assert kubectl(kubeconfig, "get", "crd", f"widgets.{group}", "--ignore-not-found") == ""
    assert deployer("diff", "-e", "dev", "--detailed-exitcode").code == 0
