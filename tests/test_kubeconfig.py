"""Which cluster deployer talks to, and every way a kubeconfig can be wrong, said in one line that
names the file and the entry. The corpus is tests/data/kubeconfig; no cluster is needed here."""

from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path

import pytest
import yaml

from deployer.commands.session import kube_target
from deployer.errors import DeployerError
from deployer.kube import Cluster
from deployer.kubeconfig import KubeconfigError, helm_driver, resolve_target
from deployer.project import load_project
from testing.cli import run
from testing.example import copy_example

CORPUS = Path(__file__).resolve().parent / "data" / "kubeconfig"
TEAM = CORPUS / "two-files" / "team"
PLATFORM = CORPUS / "two-files" / "platform"
ENV = {"PATH": os.environ.get("PATH", os.defpath)}


def message(file: Path, context: str | None = None, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(DeployerError) as caught:
        resolve_target(str(file), context, environ or ENV)
    rendered = caught.value.render()
    assert "\n" not in rendered, rendered
    return rendered


def test_relative_paths_resolve_against_the_file_that_holds_them() -> None:
    merged = {**ENV, "KUBECONFIG": f"{TEAM / 'config'}{os.pathsep}{PLATFORM / 'config'}"}
    team = resolve_target(None, None, merged)  # current-context: the first file's
    assert (team.context, team.server) == ("team", "https://team.example.com:6443")
    assert team.entry("cluster")[1]["certificate-authority"] == str(TEAM / "ca.crt")
    assert team.entry("user")[1]["client-certificate"] == str(TEAM / "certs" / "alice.crt")
    assert team.entry("user")[1]["client-key"] == str(TEAM / "certs" / "alice.key")
    assert team.file_of("user") == str(TEAM / "config")
    # helm reads KUBECONFIG itself (and resolves the same paths the same way): no --kubeconfig.
    assert team.helm_flags() == ["--kube-context", "team"]

    platform = resolve_target(None, "platform", merged)
    assert platform.entry("cluster")[1]["certificate-authority"] == str(PLATFORM / "ca.crt")
    assert platform.entry("user")[1]["tokenFile"] == str(PLATFORM / "token")
    sso = resolve_target(None, "platform-sso", merged)
    assert sso.entry("user")[1]["exec"]["command"] == str(PLATFORM / "bin" / "credential")


def test_the_first_file_to_name_an_entry_wins() -> None:
    merged = {**ENV, "KUBECONFIG": f"{TEAM / 'config'}{os.pathsep}{PLATFORM / 'config'}"}
    assert resolve_target(None, "team", merged).server == "https://team.example.com:6443"
    reversed_ = {**ENV, "KUBECONFIG": f"{PLATFORM / 'config'}{os.pathsep}{TEAM / 'config'}"}
    assert resolve_target(None, "team", reversed_).server == "https://shadowed.example.com"


def test_an_explicit_kubeconfig_is_passed_on_to_helm() -> None:
    target = resolve_target(str(TEAM / "config"), None, ENV)
    assert target.helm_flags() == ["--kube-context", "team", "--kubeconfig", str(TEAM / "config")]


def test_an_auth_provider_user_is_refused_with_the_way_out() -> None:
    config = CORPUS / "auth-provider" / "config"
    assert message(config) == (
        f"error: kubeconfig {config}, user 'gke-user': auth-provider 'gcp' is not supported (kubectl "
        "dropped auth providers in 1.26); use an exec credential plugin instead (e.g. kubelogin, "
        "gke-gcloud-auth-plugin)"
    )


def test_a_missing_exec_plugin_is_named_with_its_install_hint() -> None:
    config = CORPUS / "exec-missing" / "config"
    assert message(config) == (
        f"error: kubeconfig {config}, user 'eks-admin': exec plugin deployer-test-no-such-credential-plugin "
        "not found on PATH; Install the plugin with your package manager."
    )


def test_an_exec_plugin_path_is_resolved_and_must_be_executable() -> None:
    config = CORPUS / "exec-not-executable" / "config"
    assert message(config) == (
        f"error: kubeconfig {config}, user 'dev': exec plugin {config} is not an executable file; "
        "install the credential plugin or fix users[].user.exec.command"
    )
    merged = {**ENV, "KUBECONFIG": f"{TEAM / 'config'}{os.pathsep}{PLATFORM / 'config'}"}
    assert resolve_target(None, "platform-sso", merged).context == "platform-sso"


def test_an_unreadable_client_certificate_is_named() -> None:
    config = CORPUS / "unreadable-cert" / "config"
    cert = CORPUS / "unreadable-cert" / "certs" / "bob.crt"
    assert message(config) == (
        f"error: kubeconfig {config}, user 'bob': cannot read client-certificate {cert} "
        "(No such file or directory)"
    )


def test_a_client_key_that_is_a_directory_is_named(tmp_path: Path) -> None:
    (tmp_path / "bob.crt").write_text("cert\n")
    (tmp_path / "bob.key").mkdir()
    config = tmp_path / "config"
    text = (CORPUS / "unreadable-cert" / "config").read_text().replace("certs/", "")
    config.write_text(text)
    assert message(config) == (
        f"error: kubeconfig {config}, user 'bob': cannot read client-key {tmp_path / 'bob.key'} "
        "(Is a directory)"
    )


def test_a_missing_ca_file_is_named_with_its_cluster() -> None:
    config = CORPUS / "missing-ca" / "config"
    assert message(config) == (
        f"error: kubeconfig {config}, cluster 'dev': cannot read certificate-authority "
        "/nonexistent/deployer-test/ca.crt (No such file or directory)"
    )


def test_bad_yaml_names_the_line() -> None:
    config = CORPUS / "bad-yaml" / "config"
    assert (
        message(config)
        == f"error: {config}:7:35: kubeconfig is not valid YAML: mapping values are not allowed here"
    )


def test_a_context_naming_a_user_nobody_defines() -> None:
    config = CORPUS / "dangling-user" / "config"
    assert message(config) == (
        f"error: kubeconfig {config}, context 'dev': names user 'nobody', which no kubeconfig file defines"
    )


def test_an_unknown_context_names_the_files_and_the_known_contexts() -> None:
    merged = {**ENV, "KUBECONFIG": f"{TEAM / 'config'}{os.pathsep}{PLATFORM / 'config'}"}
    with pytest.raises(DeployerError) as caught:
        resolve_target(None, "nope", merged)
    assert caught.value.render() == (
        f"error: kube context 'nope' (--kube-context) not found in {TEAM / 'config'}, {PLATFORM / 'config'} "
        "(known: platform, platform-sso, team)\n"
        "  hint: pass --kube-context NAME, or add the context to the kubeconfig"
    )


def test_a_kubeconfig_problem_on_the_command_line_is_one_line_and_exit_1(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "gitops")
    config = CORPUS / "auth-provider" / "config"
    result = run(["status", "-e", "dev", "--kubeconfig", str(config)], project)
    assert result.code == 1
    assert result.err == (
        f"error: kubeconfig {config}, user 'gke-user': auth-provider 'gcp' is not supported (kubectl "
        "dropped auth providers in 1.26); use an exec credential plugin instead (e.g. kubelogin, "
        "gke-gcloud-auth-plugin)\n"
    )


def test_a_ca_file_that_is_not_a_certificate_is_named_with_its_cluster() -> None:
    merged = {**ENV, "KUBECONFIG": f"{TEAM / 'config'}{os.pathsep}{PLATFORM / 'config'}"}
    target = resolve_target(None, "platform-sso", merged)
    cluster = Cluster(target)
    with pytest.raises(KubeconfigError) as caught:
        cluster.client()  # the corpus's CA file is only text
    assert caught.value.render().startswith(
        f"error: kubeconfig {PLATFORM / 'config'}, cluster 'platform': cannot set up the connection: "
    )


# kubeContext selects the environment's context; --kube-context may only confirm it.


def project_with_context(tmp_path: Path, context: str) -> Path:
    project = copy_example(tmp_path / "gitops")
    spec = project / "deployer.yaml"
    spec.write_text(spec.read_text().replace("${PROD_KUBE_CONTEXT:-sandbox}", context))
    return project


def args(kube_context: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(kubeconfig=None, kube_context=kube_context)


def test_kube_context_of_the_environment_selects_that_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = load_project(project_with_context(tmp_path, "platform") / "deployer.yaml")
    monkeypatch.setenv("KUBECONFIG", f"{TEAM / 'config'}{os.pathsep}{PLATFORM / 'config'}")
    target = kube_target(proj, "prod", args())
    assert (target.context, target.server) == ("platform", "https://platform.example.com:6443")
    assert target.helm_flags() == ["--kube-context", "platform"]
    assert kube_target(proj, "prod", args("platform")).context == "platform"
    assert kube_target(proj, "dev", args()).context == "team"  # no kubeContext: the current context


def test_a_different_kube_context_flag_is_refused(tmp_path: Path) -> None:
    project = project_with_context(tmp_path, "platform")
    kubeconfig = f"{TEAM / 'config'}{os.pathsep}{PLATFORM / 'config'}"
    result = run(["status", "-e", "prod", "--kube-context", "team"], project, {"KUBECONFIG": kubeconfig})
    assert (result.code, result.err) == (
        1,
        "error: environment 'prod' must run against kube context 'platform', but --kube-context is 'team'\n"
        "  hint: drop --kube-context (the environment selects 'platform'); nothing was done\n",
    )


def test_a_selected_context_missing_from_the_kubeconfig_names_the_files(tmp_path: Path) -> None:
    project = project_with_context(tmp_path, "prod-eu-1")
    kubeconfig = f"{TEAM / 'config'}{os.pathsep}{PLATFORM / 'config'}"
    result = run(["status", "-e", "prod"], project, {"KUBECONFIG": kubeconfig})
    assert (result.code, result.err) == (
        1,
        "error: kube context 'prod-eu-1' (kubeContext of environment 'prod') not found in "
        f"{TEAM / 'config'}, {PLATFORM / 'config'} (known: platform, platform-sso, team)\n"
        "  hint: pass --kube-context NAME, or add the context to the kubeconfig\n",
    )


# In-cluster: no kubeconfig at all, a service account mounted, KUBERNETES_SERVICE_* set.


def service_account(root: Path) -> Path:
    account = root / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("a-token")
    (account / "ca.crt").write_text("a CA\n")
    (account / "namespace").write_text("ci\n")
    return account


def in_cluster_env(tmp_path: Path, account: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {
        "KUBERNETES_SERVICE_HOST": "10.0.0.1",
        "KUBERNETES_SERVICE_PORT": "443",
        "DEPLOYER_SERVICEACCOUNT_DIR": str(account),
        "DEPLOYER_CACHE_DIR": str(tmp_path / "cache"),
        "KUBECONFIG": str(home / ".kube" / "config"),  # absent
    }


def test_in_cluster_config_when_no_kubeconfig_is_found(tmp_path: Path) -> None:
    account = service_account(tmp_path)
    target = resolve_target(None, None, in_cluster_env(tmp_path, account))
    assert (target.context, target.server, target.in_cluster) == ("in-cluster", "https://10.0.0.1:443", True)
    assert target.entry("user")[1] == {"tokenFile": str(account / "token")}
    # helm gets a private kubeconfig naming the same server, CA file and token file.
    assert target.kubeconfig is not None
    written = Path(target.kubeconfig)
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert stat.S_IMODE(written.parent.stat().st_mode) == 0o700
    assert target.helm_flags() == ["--kube-context", "in-cluster", "--kubeconfig", str(written)]
    helm_view = yaml.safe_load(written.read_text())
    assert helm_view["clusters"] == [
        {
            "name": "in-cluster",
            "cluster": {"server": "https://10.0.0.1:443", "certificate-authority": str(account / "ca.crt")},
        }
    ]
    assert helm_view["users"] == [{"name": "in-cluster", "user": {"tokenFile": str(account / "token")}}]
    assert helm_view["contexts"][0]["context"]["namespace"] == "ci"
    assert "a-token" not in written.read_text()
    # The same account gives the same file.
    assert resolve_target(None, None, in_cluster_env(tmp_path, account)).kubeconfig == str(written)


def test_in_cluster_ipv6_host_is_bracketed(tmp_path: Path) -> None:
    environ = {**in_cluster_env(tmp_path, service_account(tmp_path)), "KUBERNETES_SERVICE_HOST": "fd00::1"}
    assert resolve_target(None, None, environ).server == "https://[fd00::1]:443"


def test_in_cluster_without_a_token_says_which_file(tmp_path: Path) -> None:
    account = service_account(tmp_path)
    (account / "token").unlink()
    with pytest.raises(DeployerError) as caught:
        resolve_target(None, None, in_cluster_env(tmp_path, account))
    assert caught.value.render() == (
        f"error: in-cluster config: cannot read the service account token {account / 'token'} "
        "(No such file or directory)\n"
        "  hint: mount the pod's service account token (automountServiceAccountToken) or pass --kubeconfig"
    )


def test_in_cluster_has_only_its_own_context(tmp_path: Path) -> None:
    environ = in_cluster_env(tmp_path, service_account(tmp_path))
    with pytest.raises(DeployerError) as caught:
        resolve_target(None, "prod-eu-1", environ)
    assert caught.value.render() == (
        "error: kube context 'prod-eu-1' not found: no kubeconfig found "
        f"(looked at {environ['KUBECONFIG']}), and the in-cluster config has only the context 'in-cluster'\n"
        "  hint: mount a kubeconfig that has this context and set KUBECONFIG; nothing was done"
    )


def test_no_kubeconfig_and_not_in_a_pod(tmp_path: Path) -> None:
    environ = in_cluster_env(tmp_path, service_account(tmp_path))
    del environ["KUBERNETES_SERVICE_HOST"]
    with pytest.raises(DeployerError) as caught:
        resolve_target(None, None, environ)
    assert caught.value.render() == (
        f"error: no kubeconfig found (looked at {environ['KUBECONFIG']})\n"
        "  hint: pass --kubeconfig, set KUBECONFIG, create ~/.kube/config, or run in a pod with a service "
        "account (KUBERNETES_SERVICE_HOST)"
    )


# HELM_DRIVER: where helm keeps its releases, so where deployer must read them.


@pytest.mark.parametrize(
    ("value", "driver"),
    [
        ("", "secret"),
        ("secret", "secret"),
        ("secrets", "secret"),
        ("configmap", "configmap"),
        ("configmaps", "configmap"),
    ],
)
def test_helm_drivers_deployer_reads(value: str, driver: str) -> None:
    assert helm_driver({"HELM_DRIVER": value}) == driver
    assert resolve_target(str(TEAM / "config"), None, {**ENV, "HELM_DRIVER": value}).driver == driver


@pytest.mark.parametrize("value", ["memory", "sql"])
def test_helm_drivers_deployer_cannot_read_are_refused_before_anything_runs(
    tmp_path: Path, value: str
) -> None:
    project = copy_example(tmp_path / "gitops")
    result = run(
        ["status", "-e", "dev", "--kubeconfig", str(TEAM / "config")], project, {"HELM_DRIVER": value}
    )
    assert (result.code, result.err) == (
        1,
        f"error: HELM_DRIVER={value} is not supported: deployer reads helm's releases from the cluster "
        f"(Secrets or ConfigMaps), and {value}-stored releases are invisible to it\n"
        "  hint: unset HELM_DRIVER (secret) or set HELM_DRIVER=configmap; nothing was done\n",
    )


def test_an_unknown_helm_driver_is_refused() -> None:
    with pytest.raises(DeployerError) as caught:
        helm_driver({"HELM_DRIVER": "etcd"})
    assert (
        caught.value.message
        == "HELM_DRIVER=etcd is not a helm storage driver (secret, configmap, memory or sql)"
    )


def test_an_exec_plugin_that_fails_is_one_line_naming_the_user(tmp_path: Path) -> None:
    plugin = tmp_path / "bin" / "credential"
    plugin.parent.mkdir()
    plugin.write_text("#!/bin/sh\necho 'token expired: run sso login' >&2\nexit 1\n")
    plugin.chmod(0o755)
    config = tmp_path / "config"
    config.write_text(
        yaml.safe_dump(
            {
                "current-context": "dev",
                "clusters": [{"name": "dev", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [
                    {
                        "name": "sso",
                        "user": {
                            "exec": {
                                "apiVersion": "client.authentication.k8s.io/v1",
                                "command": "bin/credential",
                            }
                        },
                    }
                ],
                "contexts": [{"name": "dev", "context": {"cluster": "dev", "user": "sso"}}],
            }
        )
    )
    with pytest.raises(KubeconfigError) as caught:
        Cluster(resolve_target(str(config), None, ENV)).version()
    assert caught.value.render() == (
        f"error: kubeconfig {config}, user 'sso': cannot authenticate to read /version: Exec {plugin} "
        "returned 1: token expired: run sso login"
    )


def test_a_context_without_a_user_connects_anonymously(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(
        yaml.safe_dump(
            {
                "current-context": "dev",
                "clusters": [{"name": "dev", "cluster": {"server": "https://127.0.0.1:9"}}],
                "contexts": [{"name": "dev", "context": {"cluster": "dev"}}],
            }
        )
    )
    target = resolve_target(str(config), None, ENV)
    assert target.entry("user") == ("", {})
    assert Cluster(target).client() is not None  # lightkube asserts a user; deployer gives it an empty one
