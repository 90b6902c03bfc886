"""`deployer diff --base GIT_REF`: the spec as of a ref against the working tree, no cluster at all."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from testing.cli import run
from testing.fakes import RecordingHelm
from testing.gitrepo import example_repo, git

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.helm


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A Git repository holding the example, with one commit."""
    return example_repo(tmp_path / "gitops")


# No kubeconfig anywhere: any attempt to reach a cluster would fail the run.
OFFLINE = {"KUBECONFIG": "/nonexistent/kubeconfig", "API_KEY": None}


def test_unchanged_working_tree_has_no_changes(repo: Path, helm: Path, cache: Path) -> None:
    result = run(
        ["diff", "-e", "prod", "--base", "HEAD", "--detailed-exitcode"],
        repo,
        {**OFFLINE, "DEPLOYER_HELM": str(helm)},
    )
    assert result.code == 0, result.err
    # ... and says what it compared with, as a plan with changes does.
    assert result.out == (
        "No changes: 3 release(s) in prod are up to date.\nNote: compared with HEAD (no cluster access)\n"
    )


def test_a_committed_overlay_change_shows_exactly_that_field(repo: Path, helm: Path, cache: Path) -> None:
    overlay = repo / "environments" / "prod" / "values.yaml"
    overlay.write_text(overlay.read_text().replace("replicaCount: 3", "replicaCount: 5"))
    git(repo, "commit", "-qam", "prod: five api replicas")
    result = run(
        ["diff", "-e", "prod", "--base", "HEAD~1", "--output", "json", "--detailed-exitcode"],
        repo,
        {**OFFLINE, "DEPLOYER_HELM": str(helm)},
    )
    assert result.code == 2, result.err
    doc = json.loads(result.out)
    changed = {r["key"]: r for r in doc["releases"] if r["action"] != "noop"}
    assert list(changed) == ["shop/api"]
    [resource] = changed["shop/api"]["resources"]
    assert (resource["group"], resource["kind"], resource["namespace"], resource["name"]) == (
        "apps",
        "Deployment",
        "shop",
        "api",
    )
    lines = [x for x in resource["diff"].splitlines() if x[:1] in "+-" and x[:3] not in ("+++", "---")]
    assert lines == ["-  replicas: 3", "+  replicas: 5"]
    assert changed["shop/api"]["values"] == [
        {
            "path": "replicaCount",
            "change": "changed",
            "before": 3,
            "after": 5,
            "source": "environments/prod/values.yaml:6:17",
        }
    ]
    assert git(repo, "worktree", "list").count("\n") == 1  # the temporary worktree is gone


def test_a_release_removed_from_the_spec_would_be_pruned(repo: Path, helm: Path, cache: Path) -> None:
    spec = repo / "deployer.yaml"
    text = spec.read_text()
    spec.write_text(text[: text.index("  - name: worker")])
    overlay = repo / "environments" / "prod" / "values.yaml"
    overlay.write_text(overlay.read_text()[: overlay.read_text().index("worker:")])
    result = run(["diff", "-e", "prod", "--base", "HEAD"], repo, {**OFFLINE, "DEPLOYER_HELM": str(helm)})
    assert result.code == 0, result.err
    assert "- shop/worker  prune  worker 0.3.0" in result.out


def test_an_unknown_ref_fails_clearly(repo: Path, helm: Path, cache: Path) -> None:
    result = run(
        ["diff", "-e", "prod", "--base", "origin/main"], repo, {**OFFLINE, "DEPLOYER_HELM": str(helm)}
    )
    assert result.code == 1
    assert result.err.endswith(
        f"error: Git ref 'origin/main' not found in {repo}\n"
        "  hint: fetch it first (e.g. git fetch origin main), or check the name\n"
    )


def test_an_unchanged_release_is_not_rendered_again(
    repo: Path, helm: Path, cache: Path, tmp_path: Path
) -> None:
    recorder = RecordingHelm(helm, tmp_path / "recorder")
    env = {**OFFLINE, "DEPLOYER_HELM": str(recorder.path)}
    first = run(["diff", "-e", "prod", "--base", "HEAD"], repo, env)
    assert first.code == 0, first.err
    assert recorder.commands().count("template") == 3  # HEAD and the working tree render the same
    overlay = repo / "environments" / "prod" / "values.yaml"
    overlay.write_text(overlay.read_text().replace("concurrency: 8", "concurrency: 9"))
    second = run(["diff", "-e", "prod", "--base", "HEAD"], repo, env)
    assert second.code == 0, second.err
    assert recorder.commands().count("template") == 4  # only the changed worker was rendered again
    assert "rendered 3 release(s) (2 from the render cache)" in second.err


def test_offline_the_plan_names_the_releases_whose_chart_uses_lookup(
    repo: Path, helm: Path, cache: Path
) -> None:
    shutil.copytree(ROOT / "tests" / "data" / "charts" / "shapes" / "keeper", repo / "charts" / "keeper")
    spec = repo / "deployer.yaml"
    spec.write_text(spec.read_text() + "  - name: keeper\n    chart: ./charts/keeper\n    namespace: shop\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a chart that keeps its password with lookup")
    result = run(
        ["diff", "-e", "prod", "--base", "HEAD", "--output", "json"],
        repo,
        {**OFFLINE, "DEPLOYER_HELM": str(helm)},
    )
    assert result.code == 0, result.err
    assert json.loads(result.out)["notes"] == [
        "compared with HEAD (no cluster access)",
        "shop/keeper use(s) lookup: values looked up in the cluster are unknown offline, "
        "so their diff may show changes a cluster diff would not",
    ]


def test_offline_a_create_replace_release_names_its_changed_crd_files(
    repo: Path, helm: Path, cache: Path
) -> None:
    spec = repo / "deployer.yaml"
    spec.write_text(
        spec.read_text().replace("  namespace: shop\n", "  namespace: shop\n  crds: createReplace\n", 1)
    )
    git(repo, "commit", "-qam", "createReplace")
    crds = repo / "charts" / "platform-config" / "crds"
    crds.mkdir()
    (crds / "widgets.yaml").write_text(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a CRD")
    result = run(["diff", "-e", "prod", "--base", "HEAD~1"], repo, {**OFFLINE, "DEPLOYER_HELM": str(helm)})
    assert result.code == 0, result.err
    assert (
        "Note: shop/platform-config: crds/widgets.yaml changed since HEAD~1: apply applies the chart's CRDs "
        "server-side before the upgrade (crds: createReplace); `deployer diff` against the cluster "
        "summarises the change\n"
    ) in result.out
