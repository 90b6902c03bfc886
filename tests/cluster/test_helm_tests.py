"""`deployer test` and `apply --test`: the releases' helm tests (test hooks) on the real control
plane, both helm majors. A passing test is a Job kwok completes; a failing one is a Job whose pod can
never be scheduled, so the real Job controller fails it at its activeDeadlineSeconds."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from testing.chartrepo import make_chart
from testing.cluster_run import Deployer

SECRET = "tok-5f1e9c2a77"  # a sensitive value the chart's NOTES print (helm test prints the notes)

SPEC = """\
defaults:
  namespace: {namespace}
  timeout: 60
  wait: true
  atomic: false
  sensitive: [token]
environments:
  {env}: {{}}
releases:
  - name: db
    chart: ./charts/checked-1.0.0-src/checked
    labels: {{tier: data}}
  - name: api
    chart: ./charts/checked-1.0.0-src/checked
    needs: [db]
    labels: {{tier: backend}}
    values:
      - token: {secret}
        fail: {fail}
"""

TEST_JOB = """\
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-smoke
  annotations:
    helm.sh/hook: test
spec:
  backoffLimit: 0
  {{- if .Values.fail }}
  activeDeadlineSeconds: 3
  {{- end }}
  template:
    spec:
      restartPolicy: Never
      {{- if .Values.fail }}
      nodeSelector: {disk: none}
      {{- end }}
      containers:
        - name: smoke
          image: busybox:1.36
          command: [sh, -c, "wget -qO- http://{{ .Release.Name }}"]
"""


def write_project(root: Path, namespace: str, *, fail: bool) -> Path:
    """The spec (api's test fails when `fail`); the chart is written once, the first time."""
    if not (root / "charts").exists():
        chart = make_chart(root / "charts", "checked", "1.0.0")
        (chart / "templates" / "tests.yaml").write_text(TEST_JOB)
        (chart / "templates" / "NOTES.txt").write_text("Connect with token {{ .Values.token }}\n")
    (root / "deployer.yaml").write_text(
        SPEC.format(namespace=namespace, env=env(namespace), secret=SECRET, fail=str(fail).lower())
    )
    return root


def helm_major(helm: Path) -> int:
    out = subprocess.run(
        [str(helm), "version", "--template", "{{.Version}}"], check=True, capture_output=True, text=True
    )
    return int(out.stdout.lstrip("v").split(".")[0])


def env(namespace: str) -> str:
    return f"dev-{namespace[-8:]}"  # the Lease is per project and environment: one per test


@pytest.fixture
def deployer(tmp_path: Path, namespace: str, helm: Path, kubeconfig: Path, cache: Path) -> Deployer:
    return Deployer(write_project(tmp_path / "gitops", namespace, fail=False), helm, kubeconfig, cache)


def test_deployer_test_runs_tests_in_needs_order_and_fails_on_a_failing_one(
    deployer: Deployer, namespace: str
) -> None:
    assert deployer("apply", "-e", env(namespace)).code == 0
    passed = deployer("test", "-e", env(namespace))
    assert passed.code == 0, passed.err
    assert passed.out.splitlines() == [
        f"{namespace}/db\tpassed",
        f"{namespace}/api\tpassed",
        "Tests passed: 2 ok, 0 failed.",
    ]
    assert f"{namespace}/api: tests passed" in passed.err

    write_project(deployer.project, namespace, fail=True)
    assert deployer("apply", "-e", env(namespace)).code == 0  # no wait for tests: the release deploys
    failed = deployer("test", "-e", env(namespace))
    assert failed.code == 1
    lines = failed.out.splitlines()
    assert lines[0] == f"{namespace}/db\tpassed"
    assert lines[1].startswith(f"{namespace}/api\tfailed\t"), failed.out
    assert "smoke" in lines[1]  # helm names the test that failed
    assert lines[-1] == "Tests FAILED: 1 ok, 1 failed."
    # What helm printed is shown (the CI log is where it is read), masked like the diff.
    assert f"{namespace}/api: tests failed" in failed.err
    if helm_major(deployer.helm) == 3:  # helm 3 prints the release notes with the tests; helm 4 not
        assert "  | Connect with token <sensitive>" in failed.err
    assert SECRET not in failed.out + failed.err

    only_db = deployer("test", "-e", env(namespace), "-l", "tier=data")
    assert only_db.code == 0
    assert f"{namespace}/api" not in only_db.out


def test_apply_test_fails_the_release_whose_test_fails_and_rolls_back(
    deployer: Deployer, namespace: str
) -> None:
    applied = deployer("apply", "-e", env(namespace), "--test")
    assert applied.code == 0, applied.err
    assert f"{namespace}/api: tests passed" in applied.err
    # Tests leave the releases as they were: the plan is clean, a second apply changes nothing.
    assert deployer("diff", "-e", env(namespace), "--detailed-exitcode").code == 0
    assert "No changes" in deployer("apply", "-e", env(namespace), "--test").out
    assert deployer.revision("api", namespace) == 1

    write_project(deployer.project, namespace, fail=True)
    result = deployer("apply", "-e", env(namespace), "--test", "--rollback-on-failure")
    assert result.code == 1
    api = next(line for line in result.out.splitlines() if line.startswith(f"{namespace}/api\t"))
    assert api.startswith(f"{namespace}/api\tupgrade\tfailed\ttests failed: "), result.out
    assert api.endswith("\trolled back to revision 1"), api
    assert "Apply FAILED" in result.out
    assert SECRET not in result.out + result.err
    assert deployer.revision("api", namespace) == 3  # 2 (the failed upgrade), then 3 (the rollback)
    assert (
        deployer("diff", "-e", env(namespace), "--detailed-exitcode").code == 2
    )  # the failing change remains
