"""The cluster edge against the sandbox: a pod's service account with no kubeconfig at all, the
environment's kubeContext selecting its context, an exec credential plugin, and releases that helm
stores in ConfigMaps (HELM_DRIVER=configmap)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from testing import sandbox
from testing.cluster_run import Deployer
from testing.example import copy_example


@pytest.fixture
def deployer(tmp_path: Path, namespace: str, helm: Path, kubeconfig: Path, cache: Path) -> Deployer:
    project = copy_example(tmp_path / "gitops", namespace=namespace, env_suffix=f"-{namespace[-8:]}")
    return Deployer(project, helm, kubeconfig, cache)


def sandbox_config(kubeconfig: Path) -> dict[str, object]:
    config: dict[str, object] = yaml.safe_load(kubeconfig.read_text())
    return config


@pytest.fixture
def service_account(tmp_path: Path, kubeconfig: Path, namespace: str) -> Iterator[Path]:
    """A real ServiceAccount bound to cluster-admin, mounted as a pod would have it: token, ca.crt,
    namespace in one directory."""
    kubectl = sandbox.kubectl
    kubectl(kubeconfig, "create", "serviceaccount", "ci-runner", "-n", namespace)
    binding = f"deployer-test-{namespace}"
    kubectl(
        kubeconfig,
        "create",
        "clusterrolebinding",
        binding,
        "--clusterrole=cluster-admin",
        f"--serviceaccount={namespace}:ci-runner",
    )
    token = kubectl(kubeconfig, "create", "token", "ci-runner", "-n", namespace, "--duration=1h").stdout
    cluster = sandbox_config(kubeconfig)["clusters"][0]["cluster"]  # type: ignore[index]
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(token.strip())
    (account / "ca.crt").write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    (account / "namespace").write_text(namespace)
    yield account
    kubectl(kubeconfig, "delete", "clusterrolebinding", binding, "--ignore-not-found", check=False)


def in_cluster_env(tmp_path: Path, kubeconfig: Path, account: Path) -> dict[str, str | None]:
    """No kubeconfig anywhere: KUBECONFIG unset, HOME empty; the service account and the API's
    address as a pod sees them."""
    server = urlsplit(sandbox_config(kubeconfig)["clusters"][0]["cluster"]["server"])  # type: ignore[index]
    home = tmp_path / "empty-home"
    home.mkdir()
    return {
        "KUBECONFIG": None,
        "HOME": str(home),
        "KUBERNETES_SERVICE_HOST": server.hostname,
        "KUBERNETES_SERVICE_PORT": str(server.port),
        "DEPLOYER_SERVICEACCOUNT_DIR": str(account),
    }


def test_a_pod_s_service_account_reads_and_renders_against_the_cluster_with_no_kubeconfig(
    deployer: Deployer, namespace: str, tmp_path: Path, kubeconfig: Path, service_account: Path
) -> None:
    e = f"dev-{namespace[-8:]}"
    assert deployer("apply", "-e", e).code == 0
    env = in_cluster_env(tmp_path, kubeconfig, service_account)

    status = deployer("status", "-e", e, env=env)
    assert status.code == 0, status.err
    rows = {line.split()[0]: line.split() for line in status.out.splitlines()[1:]}
    assert {key: row[1:3] for key, row in rows.items()} == {
        f"{namespace}/{name}": ["1", "deployed"] for name in ("api", "platform-config", "worker")
    }
    # diff renders with helm (given the same server, CA and token file) and reads the releases.
    diff = deployer("diff", "-e", e, "--detailed-exitcode", env=env)
    assert diff.code == 0, diff.err + diff.out
    assert diff.out == f"No changes: 3 release(s) in {e} are up to date.\n"


def test_a_service_account_without_rights_is_refused_by_the_api_not_a_traceback(
    deployer: Deployer, namespace: str, tmp_path: Path, kubeconfig: Path, service_account: Path
) -> None:
    sandbox.kubectl(kubeconfig, "delete", "clusterrolebinding", f"deployer-test-{namespace}")
    e = f"dev-{namespace[-8:]}"
    result = deployer("status", "-e", e, env=in_cluster_env(tmp_path, kubeconfig, service_account))
    assert result.code == 1
    assert result.err.startswith(f"error: not allowed to list Secrets in namespace {namespace}: ")
    assert f"system:serviceaccount:{namespace}:ci-runner" in result.err


def test_the_environment_s_kube_context_is_selected_over_the_current_one(
    deployer: Deployer, namespace: str, tmp_path: Path, kubeconfig: Path
) -> None:
    # The current context points nowhere; the environment names the sandbox's.
    config = sandbox_config(kubeconfig)
    config["clusters"].append({"name": "nowhere", "cluster": {"server": "https://127.0.0.1:9"}})  # type: ignore[attr-defined]
    config["contexts"].append({"name": "nowhere", "context": {"cluster": "nowhere", "user": "admin"}})  # type: ignore[attr-defined]
    config["current-context"] = "nowhere"
    mixed = tmp_path / "kubeconfig"
    mixed.write_text(yaml.safe_dump(config))
    e = f"prod-{namespace[-8:]}"
    env: dict[str, str | None] = {"KUBECONFIG": str(mixed), "PROD_KUBE_CONTEXT": "sandbox"}
    assert deployer("apply", "-e", e, "--yes", env=env).code == 0
    assert deployer.revision("api", namespace) == 1
    status = deployer("status", "-e", e, env=env)
    assert status.code == 0, status.err
    assert f"{namespace}/api" in status.out
    diff = deployer("diff", "-e", e, "--detailed-exitcode", env=env)
    assert (diff.code, diff.out) == (0, f"No changes: 3 release(s) in {e} are up to date.\n"), diff.err
    refused = deployer("status", "-e", e, "--kube-context", "nowhere", env=env)
    assert refused.err == (
        f"error: environment '{e}' must run against kube context 'sandbox', but --kube-context is 'nowhere'\n"
        "  hint: drop --kube-context (the environment selects 'sandbox'); nothing was done\n"
    )


def test_an_exec_credential_plugin_relative_to_its_kubeconfig_authenticates(
    deployer: Deployer, namespace: str, tmp_path: Path, kubeconfig: Path
) -> None:
    config = sandbox_config(kubeconfig)
    users = config["users"]
    token = users[0]["user"]["token"]  # type: ignore[index]
    directory = tmp_path / "kube"
    (directory / "bin").mkdir(parents=True)
    plugin = directory / "bin" / "credential"
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": token},
    }
    plugin.write_text(f"#!/bin/sh\necho '{json.dumps(credential)}'\n")
    plugin.chmod(0o755)
    config["users"] = [
        {
            "name": "admin",
            "user": {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1",
                    "command": "./bin/credential",
                    "interactiveMode": "Never",
                }
            },
        }
    ]
    (directory / "config").write_text(yaml.safe_dump(config))
    e = f"dev-{namespace[-8:]}"
    # Run from another directory: ./bin/credential is the kubeconfig's, not the working directory's.
    result = deployer("status", "-e", e, env={"KUBECONFIG": str(directory / "config")})
    assert result.code == 0, result.err
    assert f"{namespace}/api" in result.out


def test_releases_helm_stores_in_configmaps_are_seen(
    deployer: Deployer, namespace: str, kubeconfig: Path
) -> None:
    e = f"dev-{namespace[-8:]}"
    env: dict[str, str | None] = {"HELM_DRIVER": "configmap"}
    assert deployer("apply", "-e", e, env=env).code == 0
    stored = sandbox.kubectl(
        kubeconfig, "get", "configmaps,secrets", "-n", namespace, "-l", "owner=helm", "-o", "name"
    ).stdout.split()
    assert sorted(stored) == [
        f"configmap/sh.helm.release.v1.{name}.v1" for name in ("api", "platform-config", "worker")
    ]

    diff = deployer("diff", "-e", e, "--detailed-exitcode", env=env)
    assert (diff.code, diff.out) == (0, f"No changes: 3 release(s) in {e} are up to date.\n"), diff.err
    status = deployer("status", "-e", e, env=env)
    assert f"{namespace}/api" in status.out and "deployed" in status.out
    # With helm's default driver the same releases are not there: the driver decides where to look.
    assert deployer("diff", "-e", e, "--detailed-exitcode").code == 2
