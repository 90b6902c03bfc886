"""Offline renders with captured capabilities (environments/<env>/capabilities.yaml, `apiVersions:`):
a PR plan (`diff --base`) and `template` render what a cluster render would; without them, the plan
names the releases whose templates test the cluster's API versions. No cluster anywhere."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from deployer.capabilities import dump
from testing.cli import run, tree_state
from testing.gitrepo import git

ROOT = Path(__file__).resolve().parent.parent
SHAPES = ROOT / "tests" / "data" / "charts" / "shapes"
pytestmark = pytest.mark.helm
OFFLINE = {"KUBECONFIG": "/nonexistent/kubeconfig"}
MONITORING = ["monitoring.coreos.com/v1", "monitoring.coreos.com/v1/ServiceMonitor"]

SPEC = """\
environments:
  prod: {env}
releases:
  - name: web
    chart: ./charts/monitored
    namespace: shop
"""


def monitored_repo(path: Path, env: str = "{}") -> Path:
    """A Git repository with one release of the `monitored` chart (a ServiceMonitor guarded by
    `.Capabilities.APIVersions.Has`), then a commit that changes the ServiceMonitor's interval."""
    path.mkdir(parents=True)
    shutil.copytree(SHAPES / "monitored", path / "charts" / "monitored")
    (path / "deployer.yaml").write_text(SPEC.format(env=env))
    overlay = path / "environments" / "prod" / "values.yaml"
    overlay.parent.mkdir(parents=True)
    overlay.write_text("web:\n  metrics:\n    serviceMonitor:\n      interval: 30s\n")
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "base")
    overlay.write_text("web:\n  metrics:\n    serviceMonitor:\n      interval: 60s\n")
    git(path, "commit", "-qam", "scrape every minute")
    return path


def capture(repo: Path, apis: list[str], version: str = "v1.35.4") -> None:
    """What `deployer capabilities -e prod` writes (tests/cluster/test_capabilities.py runs it)."""
    path = repo / "environments" / "prod" / "capabilities.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump("prod", version, ["v1", "apps/v1", *apis]))


def diff(repo: Path, helm: Path, output: str) -> tuple[int, str, str]:
    result = run(
        ["diff", "-e", "prod", "--base", "HEAD~1", "--output", output, "--detailed-exitcode"],
        repo,
        {**OFFLINE, "DEPLOYER_HELM": str(helm)},
    )
    return result.code, result.out, result.err


def files(repo: Path) -> dict[str, tuple[int, int, bytes]]:
    """The working tree's files (a --base plan adds and removes a Git worktree under .git)."""
    return {k: v for k, v in tree_state(repo).items() if not k.startswith(".git")}


def changed_lines(text: str) -> list[str]:
    return [
        x.strip() for x in text.splitlines() if x.strip()[:1] in "+-" and x.strip()[:3] not in ("+++", "---")
    ]


def test_offline_without_capabilities_the_plan_names_the_release_and_the_command(
    tmp_path: Path, helm: Path, cache: Path
) -> None:
    repo = monitored_repo(tmp_path / "gitops")
    code, out, err = diff(repo, helm, "json")
    assert code == 2, err  # the value changed, but no object shows it: the ServiceMonitor is not rendered
    doc = json.loads(out)
    [release] = doc["releases"]
    assert release["resources"] == []
    assert doc["notes"] == [
        "compared with HEAD~1 (no cluster access)",
        "shop/web test(s) the cluster's API versions (.Capabilities.APIVersions) and were rendered with "
        "helm's built-in ones only: objects they guard (a ServiceMonitor, ...) may be missing and changes "
        "to them unseen; run `deployer capabilities -e prod` with cluster access and commit "
        "environments/prod/capabilities.yaml (or declare apiVersions: on the environment)",
    ]
    for output in ("text", "markdown"):
        code, out, err = diff(repo, helm, output)
        assert code == 2, err
        assert "shop/web test(s) the cluster's API versions" in out
        assert "`deployer capabilities -e prod`" in out


@pytest.mark.parametrize("output", ["text", "markdown", "json"])
def test_with_captured_capabilities_a_servicemonitor_change_shows_in_the_pr_plan(
    tmp_path: Path, helm: Path, cache: Path, output: str
) -> None:
    repo = monitored_repo(tmp_path / "gitops")
    capture(repo, MONITORING)
    code, out, err = diff(repo, helm, output)
    assert code == 2, err
    assert "test(s) the cluster's API versions" not in out
    if output == "json":
        [release] = json.loads(out)["releases"]
        [resource] = release["resources"]
        assert (resource["group"], resource["kind"], resource["name"]) == (
            "monitoring.coreos.com",
            "ServiceMonitor",
            "web",
        )
        assert changed_lines(resource["diff"]) == ["-  - interval: 30s", "+  - interval: 60s"]
    else:
        assert "monitoring.coreos.com/ServiceMonitor shop/web" in out
        lines = changed_lines(out)
        assert lines[lines.index("-  - interval: 30s") + 1] == "+  - interval: 60s"


def test_declared_api_versions_add_to_the_captured_ones(tmp_path: Path, helm: Path, cache: Path) -> None:
    repo = monitored_repo(tmp_path / "gitops", env="{apiVersions: [monitoring.coreos.com/v1/ServiceMonitor]}")
    capture(repo, [])  # a cluster without the CRD: the declaration alone brings the ServiceMonitor
    code, out, err = diff(repo, helm, "json")
    assert code == 2, err
    [release] = json.loads(out)["releases"]
    assert [r["kind"] for r in release["resources"]] == ["ServiceMonitor"]
    (repo / "environments" / "prod" / "capabilities.yaml").unlink()
    code, out, err = diff(repo, helm, "json")  # declared, nothing captured: rendered, and no note
    assert [r["kind"] for r in json.loads(out)["releases"][0]["resources"]] == ["ServiceMonitor"]
    assert len(json.loads(out)["notes"]) == 1


def test_template_renders_with_the_captured_capabilities(tmp_path: Path, helm: Path, cache: Path) -> None:
    repo = monitored_repo(tmp_path / "gitops")
    env = {**OFFLINE, "DEPLOYER_HELM": str(helm)}
    without = run(["template", "-e", "prod"], repo, env)
    assert without.code == 0, without.err
    assert "kind: ServiceMonitor" not in without.out
    assert "note: shop/web test(s) the cluster's API versions" in without.err
    capture(repo, MONITORING)
    with_caps = run(["template", "-e", "prod"], repo, env)
    assert with_caps.code == 0, with_caps.err
    assert "kind: ServiceMonitor" in with_caps.out
    assert "interval: 60s" in with_caps.out
    assert "note:" not in with_caps.err


KUBE_CHART = """\
apiVersion: v2
name: modern
version: 0.1.0
kubeVersion: ">=1.90.0-0"
"""


def modern_repo(path: Path) -> Path:
    """A chart whose kubeVersion no offline default satisfies (kube-prometheus-stack asks >=1.25)."""
    chart = path / "charts" / "modern"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(KUBE_CHART)
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: modern\n"
        "data:\n  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n"
    )
    (path / "deployer.yaml").write_text(
        "environments:\n  prod: {}\n"
        "releases:\n  - name: modern\n    chart: ./charts/modern\n    namespace: shop\n"
    )
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "base")
    return path


def test_a_chart_refusing_the_offline_kube_version_says_which_was_assumed_and_how_to_set_it(
    tmp_path: Path, helm: Path, cache: Path
) -> None:
    repo = modern_repo(tmp_path / "gitops")
    env = {**OFFLINE, "DEPLOYER_HELM": str(helm)}
    for argv in (["diff", "-e", "prod", "--base", "HEAD"], ["template", "-e", "prod"]):
        before = files(repo)
        result = run(argv, repo, env)
        assert result.code == 1
        hint = next(line for line in result.err.splitlines() if line.startswith("  hint: "))
        # helm 3 assumes v1.20.0; helm 4 the Kubernetes version of the client library it was built with
        assert hint.startswith("  hint: rendered offline as Kubernetes v1.")
        assert (
            ", helm's default: environment 'prod' has no kubeVersion: and no "
            "environments/prod/capabilities.yaml; set kubeVersion: on the environment in deployer.yaml, "
            "or run `deployer capabilities -e prod` with cluster access and commit "
            "environments/prod/capabilities.yaml"
        ) in hint
        assert "chart requires kubeVersion: >=1.90.0-0" in result.err
        assert files(repo) == before
    capture(repo, [], version="v1.91.2")
    result = run(["template", "-e", "prod"], repo, env)
    assert result.code == 0, result.err
    assert 'kube: "v1.91.2"' in result.out
    spec = repo / "deployer.yaml"
    spec.write_text(spec.read_text().replace("prod: {}", "prod: {kubeVersion: v1.89.0}"))
    result = run(["diff", "-e", "prod", "--base", "HEAD"], repo, env)
    assert result.code == 1
    assert (
        "  hint: rendered offline as Kubernetes v1.89.0, from kubeVersion: of environment 'prod'; "
        in result.err
    )


def test_helm_3_renders_offline_as_kubernetes_1_20_and_helm_4_as_a_newer_one(
    tmp_path: Path, helm: Path, cache: Path
) -> None:
    repo = modern_repo(tmp_path / "gitops")
    (repo / "charts" / "modern" / "Chart.yaml").write_text(KUBE_CHART.replace(">=1.90.0-0", ">=1.0.0-0"))
    result = run(["template", "-e", "prod"], repo, {**OFFLINE, "DEPLOYER_HELM": str(helm)})
    assert result.code == 0, result.err
    kube = next(line for line in result.out.splitlines() if "kube:" in line)
    if helm.parent.name.startswith("helm-v3"):
        assert kube == '  kube: "v1.20.0"'
    else:
        assert kube != '  kube: "v1.20.0"'


def test_bad_api_versions_are_errors_at_their_line(tmp_path: Path, helm: Path, cache: Path) -> None:
    repo = monitored_repo(
        tmp_path / "gitops", env="\n    apiVersions:\n      - apps/v1\n      - ServiceMonitor\n"
    )
    result = run(["validate"], repo, OFFLINE)
    assert result.code == 1
    assert "deployer.yaml:5:9: " in result.err
    assert "'ServiceMonitor' is not an API version" in result.err
    repo2 = monitored_repo(tmp_path / "gitops2")
    (repo2 / "environments" / "prod" / "capabilities.yaml").write_text(
        "kubeVersion: v1.35.0\napiVersions:\n  - apps/v1\n  - 12\n"
    )
    before = files(repo2)
    result = run(["diff", "-e", "prod", "--base", "HEAD~1"], repo2, {**OFFLINE, "DEPLOYER_HELM": str(helm)})
    assert result.code == 1
    assert result.err.startswith("error: environments/prod/capabilities.yaml:4:5: '12' is not an API version")
    assert "Traceback" not in result.err
    assert files(repo2) == before
    result = run(["validate"], repo2, OFFLINE)
    assert result.code == 1
    assert result.err.startswith("error: environments/prod/capabilities.yaml:4:5: '12' is not an API version")
