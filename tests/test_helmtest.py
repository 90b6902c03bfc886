"""Which objects of a release are its helm tests, and when helm can print their logs."""

from __future__ import annotations

from pathlib import Path

from deployer import helmtest
from deployer.helm import Helm

HOOKS = """\
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  annotations: {helm.sh/hook: pre-upgrade}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-test
  annotations: {helm.sh/hook: "test-success, post-install"}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: smoke
  annotations: {helm.sh/hook: test}
"""


def test_test_hooks_are_the_test_annotated_objects_only() -> None:
    assert helmtest.test_hooks(HOOKS) == [("Job", "smoke"), ("Pod", "web-test")]
    assert helmtest.test_hooks("") == []


def test_logs_are_asked_for_where_helm_can_print_them() -> None:
    def tester(major: int) -> helmtest.Tester:
        return helmtest.Tester(Helm("helm", (major, 0, 0), Path("/nonexistent")), [])

    pod_only = [("Pod", "web-test")]
    with_job = [("Job", "smoke"), ("Pod", "web-test")]
    assert tester(3).wants_logs(pod_only)
    assert not tester(3).wants_logs(with_job)  # helm 3 asks a Job's logs as a Pod's and fails
    assert tester(4).wants_logs(with_job)
