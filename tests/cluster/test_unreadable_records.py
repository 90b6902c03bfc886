"""A Secret labelled owner=helm that helm did not write (another tool's, one made by hand) must stop
no reader of release records: diff, status, rollback and destroy leave it out with a note, and do
their work on the releases helm did write."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from testing.cluster_run import Deployer
from testing.example import copy_example
from testing.sandbox import kubectl


@pytest.fixture
def deployer(tmp_path: Path, namespace: str, helm: Path, kubeconfig: Path, cache: Path) -> Deployer:
    project = copy_example(tmp_path / "gitops", namespace=namespace, env_suffix=f"-{namespace[-8:]}")
    return Deployer(project, helm, kubeconfig, cache)


def fake_record(kubeconfig: Path, namespace: str, name: str, version: str) -> None:
    secret = f"sh.helm.release.v1.{name}.v{version}"
    kubectl(kubeconfig, "-n", namespace, "create", "secret", "generic", secret, "--from-literal=release=junk")
    labels = [f"name={name}", "owner=helm", "status=deployed", f"version={version}"]
    kubectl(kubeconfig, "-n", namespace, "label", "secret", secret, *labels)


def test_records_helm_did_not_write_are_left_out_with_a_note(
    deployer: Deployer, namespace: str, kubeconfig: Path
) -> None:
    e = f"dev-{namespace[-8:]}"
    assert deployer("apply", "-e", e).code == 0
    fake_record(kubeconfig, namespace, "junk", "1")  # not base64(gzip(JSON))
    fake_record(kubeconfig, namespace, "odd", "x")  # a version label that is no revision number
    junk = f"helm release record {namespace}/junk (revision 1: "
    odd = f"helm release record {namespace}/odd (version label 'x' is not a revision number)"

    status = deployer("status", "-e", e)
    assert status.code == 0, status.err
    assert re.search(rf"^{namespace}/worker +1 +deployed +worker 0.3.0 ", status.out, re.M), status.out
    assert junk in status.err and odd in status.err

    diff = deployer("diff", "-e", e, "--detailed-exitcode", "--output", "json")
    assert diff.code == 0, diff.out + diff.err
    assert any(junk in note for note in json.loads(diff.out)["notes"]), diff.out  # with no change too

    rollback = deployer("rollback", "-e", e)  # the last run installed all three: uninstalls them
    assert rollback.code == 0, rollback.err
    assert odd in rollback.err
    assert all(deployer.revision(r, namespace) == 0 for r in ("platform-config", "api", "worker"))

    assert deployer("apply", "-e", e).code == 0
    destroy = deployer("destroy", "-e", e, "--yes")
    assert destroy.code == 0, destroy.err
    assert junk in destroy.err and odd in destroy.err
    for output in (status, diff, rollback, destroy):
        assert "Traceback" not in output.err
