"""The plan script the GitHub Action and the GitLab template run (python -m deployer.ci.plan), in a
depth-1 clone as actions/checkout makes it, with real git and real helm; and the action's wiring."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployer import __version__
from testing.example import copy_example
from testing.tools import helm_binary

ROOT = Path(__file__).resolve().parents[1]


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.email=ci@example.com", "-c", "user.name=CI", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A repository with the example on main and a branch `more-api` giving prod four api replicas."""
    repo = copy_example(tmp_path / "origin")
    (repo / ".gitignore").write_text("charts/*/charts/\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "main")
    git(repo, "checkout", "-qb", "more-api")
    overlay = repo / "environments" / "prod" / "values.yaml"
    overlay.write_text(overlay.read_text().replace("replicaCount: 3", "replicaCount: 4"))
    git(repo, "commit", "-qam", "prod: four api replicas")
    git(repo, "checkout", "-q", "main")
    return repo


def shallow_clone(origin: Path, branch: str, dst: Path) -> Path:
    subprocess.run(
        ["git", "clone", "-q", "--depth=1", "--branch", branch, f"file://{origin}", str(dst)],
        check=True,
        capture_output=True,
    )
    return dst


def run_plan(clone: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    output = clone.parent / "github_output"
    output.write_text("")
    environ = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "GITHUB_OUTPUT")}
    environ |= {
        "PYTHONPATH": str(ROOT),
        "DEPLOYER_HELM": str(helm_binary(3)),
        "GITHUB_OUTPUT": str(output),
        "NO_COLOR": "1",
        **env,
    }
    result = subprocess.run(
        [sys.executable, "-m", "deployer.ci.plan", *args],
        cwd=clone,
        env=environ,
        check=False,
        capture_output=True,
        text=True,
    )
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    return result, outputs


@pytest.mark.helm
def test_a_depth_one_pull_request_checkout_is_planned_against_the_fetched_base(
    origin: Path, tmp_path: Path
) -> None:
    clone = shallow_clone(origin, "more-api", tmp_path / "checkout")
    assert (
        subprocess.run(
            ["git", "-C", str(clone), "rev-parse", "-q", "--verify", "origin/main"],
            capture_output=True,
            check=False,
        ).returncode
        != 0
    )

    result, outputs = run_plan(clone, "--environment", "prod", "--base-ref", "main", "--out-dir", "out")

    assert result.returncode == 0, result.stderr
    assert git(clone, "rev-parse", "origin/main") == git(origin, "rev-parse", "main")
    assert outputs["has-changes"] == "true"
    markdown = Path(outputs["plan-markdown"]).read_text()
    assert markdown.startswith("### deployer plan for `prod`")
    assert "| `replicaCount` | `3` | `4` |" in markdown
    plan = json.loads(Path(outputs["plan-json"]).read_text())
    assert (plan["environment"], plan["hasChanges"]) == ("prod", True)
    assert Path(outputs["plan-json"]) == (clone / "out" / "plan-prod.json").resolve()
    assert (clone / "out" / "plan.env").read_text().startswith("DEPLOYER_HAS_CHANGES=true\n")


@pytest.mark.helm
def test_no_change_sets_has_changes_false(origin: Path, tmp_path: Path) -> None:
    clone = shallow_clone(origin, "main", tmp_path / "checkout")

    result, outputs = run_plan(clone, "-e", "dev", "--base-ref", "main", "--out-dir", "out")

    assert result.returncode == 0, result.stderr
    assert outputs["has-changes"] == "false"


def test_an_invalid_spec_fails_with_deployers_message_and_no_outputs(origin: Path, tmp_path: Path) -> None:
    clone = shallow_clone(origin, "main", tmp_path / "checkout")
    spec = clone / "deployer.yaml"
    spec.write_text(spec.read_text().replace("needs: [platform-config]", "needs: [nowhere]"))

    result, outputs = run_plan(clone, "-e", "prod", "--base-ref", "main")

    assert result.returncode == 1
    assert "deployer.yaml:" in result.stderr and "nowhere" in result.stderr
    assert "deployer-plan: error: the spec is not valid" in result.stderr
    assert outputs == {}


def test_an_unknown_base_branch_is_named(origin: Path, tmp_path: Path) -> None:
    clone = shallow_clone(origin, "main", tmp_path / "checkout")

    result, _ = run_plan(clone, "-e", "prod", "--base-ref", "no-such-branch")

    assert result.returncode == 1
    assert "cannot fetch base branch 'no-such-branch' from origin" in result.stderr


def test_a_kubeconfig_plans_against_the_cluster_not_the_base(origin: Path, tmp_path: Path) -> None:
    clone = shallow_clone(origin, "main", tmp_path / "checkout")
    missing = tmp_path / "no-kubeconfig"

    result, _ = run_plan(clone, "-e", "dev", "--base-ref", "main", KUBECONFIG=str(missing))

    assert result.returncode == 1
    assert "deployer-plan: deployer diff -e dev --detailed-exitcode --output markdown" in result.stderr
    assert "kubeconfig" in result.stderr.lower()
    assert "git fetch" not in result.stderr


# --- the action's wiring (action.yml is only YAML; its logic is the script above) ---

ACTION = yaml.safe_load((ROOT / "action.yml").read_text())


def test_the_action_is_composite_with_the_documented_inputs_and_outputs() -> None:
    assert ACTION["runs"]["using"] == "composite"
    assert {"environment", "base-ref", "working-directory", "helm-version"} <= set(ACTION["inputs"])
    assert ACTION["inputs"]["environment"]["required"] is True
    assert ACTION["outputs"]["has-changes"]["value"] == "${{ steps.plan.outputs.has-changes }}"
    assert ACTION["outputs"]["plan-json"]["value"] == "${{ steps.plan.outputs.plan-json }}"


def test_the_action_runs_the_plan_script_and_one_sticky_comment_per_environment() -> None:
    steps: list[dict[str, Any]] = ACTION["runs"]["steps"]
    (plan,) = [s for s in steps if s.get("id") == "plan"]
    assert "-m deployer.ci.plan" in plan["run"]
    assert plan["working-directory"] == "${{ inputs.working-directory }}"
    (comment,) = [s for s in steps if "sticky-pull-request-comment" in s.get("uses", "")]
    assert comment["uses"] == "marocchino/sticky-pull-request-comment@v2"
    assert comment["with"] == {
        "header": "deployer-${{ inputs.environment }}",
        "path": "${{ steps.plan.outputs.plan-markdown }}",
    }


def test_no_input_is_expanded_inside_a_shell_script() -> None:
    """Inputs reach `run:` through env (an input holding `"; rm -rf ~` stays a string)."""
    for step in ACTION["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), step


def test_the_gitlab_template_installs_this_version_and_runs_the_same_scripts() -> None:
    template = yaml.safe_load((ROOT / "ci" / "deployer.gitlab-ci.yml").read_text())
    job = template[".deployer-plan"]
    assert job["variables"]["DEPLOYER_VERSION"] == __version__
    script = "\n".join(job["script"])
    assert "python -m deployer.ci.plan" in script
    assert "python -m deployer.ci.gitlab_note" in script
    assert job["artifacts"]["reports"]["dotenv"] == "deployer-plan/plan.env"


def test_docs_ci_uses_the_action_the_template_and_the_new_name() -> None:
    doc = (ROOT / "docs" / "ci.md").read_text()
    used = re.findall(r"uses: ([\w./-]+@[\w.]+)\n\s+with: \{([^}]*)\}", doc)
    action = f"OWNER/deployer@v{__version__}"
    inputs = [i for uses, with_ in used if uses == action for i in re.findall(r"([\w-]+):", with_)]
    assert inputs and set(inputs) <= set(ACTION["inputs"])
    assert "extends: .deployer-plan" in doc
    assert "pip install deployer" not in doc and "pip install helm-deployer" in doc


def test_save_plan_without_a_cluster_is_refused_before_any_plan(origin: Path, tmp_path: Path) -> None:
    clone = shallow_clone(origin, "main", tmp_path / "checkout")
    result, outputs = run_plan(clone, "-e", "dev", "--base-ref", "main", "--save-plan")
    assert result.returncode == 1
    assert "--save-plan needs the cluster" in result.stderr
    assert "deployer diff" not in result.stderr
    assert outputs == {}


def test_the_action_saves_the_plan_as_an_artifact_only_when_asked() -> None:
    steps: list[dict[str, Any]] = ACTION["runs"]["steps"]
    (plan,) = [s for s in steps if s.get("id") == "plan"]
    assert plan["env"]["DEPLOYER_SAVE_PLAN"] == "${{ inputs.save-plan }}"
    assert '"${save[@]}"' in plan["run"]
    (upload,) = [s for s in steps if "upload-artifact" in s.get("uses", "")]
    assert upload["if"] == "inputs.save-plan == 'true'"
    assert upload["with"]["name"] == "deployer-plan-${{ inputs.environment }}"
    assert upload["with"]["path"] == "${{ steps.plan.outputs.plan-file }}"
    assert ACTION["inputs"]["save-plan"]["default"] == "false"
    assert ACTION["outputs"]["plan-file"]["value"] == "${{ steps.plan.outputs.plan-file }}"


def test_the_gitlab_template_applies_the_merge_requests_saved_plan() -> None:
    template = yaml.safe_load((ROOT / "ci" / "deployer.gitlab-ci.yml").read_text())
    assert "$SAVE" in "\n".join(template[".deployer-plan"]["script"])
    job = template[".deployer-apply-plan"]
    assert job["variables"]["DEPLOYER_VERSION"] == __version__
    script = "\n".join(job["script"])
    assert "python -m deployer.ci.gitlab_plan" in script
    assert "deployer apply" in script and "--plan" in script
    assert job["rules"] == [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}]
