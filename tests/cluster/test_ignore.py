"""Declared noise on the sandbox: an HPA's replicas and a caBundle another process injects are drift
for `diff --live` until an `ignore:` rule names them; `--no-ignore` shows them again."""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.cluster_run import Deployer

CHART = {
    "Chart.yaml": "apiVersion: v2\nname: noisy\nversion: 1.0.0\n",
    "templates/deployment.yaml": """\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
        spec:
          replicas: 1
          selector:
            matchLabels: {app: web}
          template:
            metadata:
              labels: {app: web}
            spec:
              containers:
                - name: web
                  image: registry.invalid/web:1
        """,
    # Rules that match no request anyone makes, so the webhook never runs.
    "templates/webhook.yaml": """\
        apiVersion: admissionregistration.k8s.io/v1
        kind: ValidatingWebhookConfiguration
        metadata:
          name: {{ .Release.Namespace }}-guard
        webhooks:
          - name: guard.deployer-test.invalid
            admissionReviewVersions: [v1]
            sideEffects: None
            failurePolicy: Ignore
            clientConfig:
              caBundle: Cg==
              service: {name: guard, namespace: {{ .Release.Namespace }}, path: /validate}
            rules:
              - apiGroups: [deployer-test.invalid]
                apiVersions: [v1]
                operations: [CREATE]
                resources: [nothings]
        """,
}

RULES = """\
    ignore:
      - kind: Deployment
        name: web
        fields: [/spec/replicas]
      - kind: ValidatingWebhookConfiguration
        group: admissionregistration.k8s.io
        fields:
          - webhooks[*].clientConfig.caBundle
"""


def _project(root: Path, namespace: str, *, rules: bool) -> Path:
    for name, text in CHART.items():
        path = root / "chart" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    spec = (
        f"project: {namespace}\nenvironments:\n  dev: {{}}\n"
        f"releases:\n  - name: noisy\n    chart: ./chart\n    namespace: {namespace}\n"
    )
    if rules:
        spec += textwrap.indent(textwrap.dedent(RULES), "    ")
    (root / "deployer.yaml").write_text(spec)
    return root


@pytest.fixture
def project(tmp_path: Path, namespace: str, kubeconfig: Path) -> Iterator[Path]:
    yield _project(tmp_path / "gitops", namespace, rules=False)
    kubectl(
        kubeconfig, "delete", "validatingwebhookconfiguration", f"{namespace}-guard", "--ignore-not-found"
    )


def kubectl(kubeconfig: Path, *argv: str) -> None:
    subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), *argv], check=True, capture_output=True)


def test_declared_noise_is_counted_not_reported_as_drift(
    project: Path, namespace: str, helm: Path, kubeconfig: Path, cache: Path
) -> None:
    deployer = Deployer(project, helm, kubeconfig, cache)
    applied = deployer("apply", "-e", "dev")
    assert applied.code == 0, applied.err
    # What an HPA does to its target, and what cert-manager's cainjector does to a webhook.
    kubectl(kubeconfig, "-n", namespace, "scale", "deployment/web", "--replicas=3")
    kubectl(
        kubeconfig,
        "patch",
        "validatingwebhookconfiguration",
        f"{namespace}-guard",
        "--type=json",
        "--field-manager=cainjector",
        '--patch=[{"op": "replace", "path": "/webhooks/0/clientConfig/caBundle", "value": "LS0tLS0K"}]',
    )

    noisy = deployer("diff", "-e", "dev", "--live", "--output", "json", "--detailed-exitcode")
    assert noisy.code == 2, noisy.err
    [rel] = json.loads(noisy.out)["releases"]
    assert [(d["kind"], d["change"]) for d in rel["drift"]] == [
        ("ValidatingWebhookConfiguration", "drifted"),
        ("Deployment", "drifted"),
    ]

    _project(project, namespace, rules=True)
    quiet = deployer("diff", "-e", "dev", "--live", "--detailed-exitcode")
    assert quiet.code == 0, quiet.err
    assert quiet.out == (
        "No changes: 1 release(s) in dev are up to date.\n"
        f"Ignored: {namespace}/noisy: 2 ignored change(s): "
        f"admissionregistration.k8s.io/ValidatingWebhookConfiguration {namespace}-guard "
        f"/webhooks/0/clientConfig/caBundle (drift), apps/Deployment {namespace}/web /spec/replicas (drift)\n"
        "2 ignored change(s) (--no-ignore shows them).\n"
    )
    as_json = json.loads(deployer("diff", "-e", "dev", "--live", "--output", "json").out)
    assert (as_json["hasChanges"], as_json["ignored"]) == (False, 2)
    assert "2 ignored change(s)" in deployer("diff", "-e", "dev", "--live", "--output", "markdown").out
    # apply plans nothing: no new revision for noise
    assert deployer("apply", "-e", "dev").code == 0
    assert deployer.revision("noisy", namespace) == 1

    shown = deployer("diff", "-e", "dev", "--live", "--no-ignore", "--output", "json", "--detailed-exitcode")
    assert shown.code == 2, shown.err
    [rel] = json.loads(shown.out)["releases"]
    assert len(rel["drift"]) == 2
    assert rel["ignored"] == []
