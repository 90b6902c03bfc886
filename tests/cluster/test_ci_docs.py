"""The deployer commands of docs/ci.md's GitHub and GitLab workflows, run as those jobs run them."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

from testing.cluster_run import Deployer
from testing.example import copy_example
from testing.gitrepo import git

DOC = Path(__file__).resolve().parents[2] / "docs" / "ci.md"


def commands(section: str) -> list[str]:
    text = DOC.read_text().split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    blocks = "\n".join(re.findall(r"```yaml\n(.*?)```", text, flags=re.S))
    found = re.findall(r"^\s*(?:- )?(deployer [^\n]+)$", blocks, flags=re.M)
    return [c.strip() for c in found]


def test_github_and_gitlab_run_the_same_deployer_commands() -> None:
    assert (
        commands("GitHub Actions")
        == commands("GitLab CI")
        == [
            "deployer validate",
            'deployer diff -e prod --base "origin/$BASE_REF" --output markdown > plan.md',
            "deployer apply -e prod --yes --output json > run.json",
        ]
    )


def test_the_workflow_commands_plan_a_pull_request_and_apply_on_merge(
    tmp_path: Path, namespace: str, helm: Path, kubeconfig: Path, cache: Path
) -> None:
    suffix = f"-{namespace[-8:]}"
    project = copy_example(tmp_path / "gitops", namespace=namespace, env_suffix=suffix)
    (project / ".gitignore").write_text("charts/*/charts/\n")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "main")
    git(project, "update-ref", "refs/remotes/origin/main", "HEAD")  # as after `git fetch origin main`
    overlay = project / "environments" / f"prod{suffix}" / "values.yaml"
    overlay.write_text(overlay.read_text().replace("replicaCount: 3", "replicaCount: 4"))
    git(project, "commit", "-qam", "prod: four api replicas")

    deployer = Deployer(project, helm, kubeconfig, cache)
    outputs: dict[str, str] = {}
    for command in commands("GitHub Actions"):
        words = shlex.split(command.replace("$BASE_REF", "main"))[1:]
        target = words[words.index(">") + 1] if ">" in words else None
        words = words[: words.index(">")] if target else words
        words = [f"prod{suffix}" if w == "prod" else w for w in words]
        result = deployer(*words)
        assert result.code == 0, (command, result.err)
        if target:
            outputs[target] = result.out

    plan = outputs["plan.md"]
    assert plan.startswith(f"### deployer plan for `prod{suffix}`")
    assert "| `replicaCount` | `3` | `4` |" in plan
    run = json.loads(outputs["run.json"])
    assert run["ok"] is True
    assert {r["key"].split("/")[1] for r in run["releases"]} == {"platform-config", "api", "worker"}
    assert deployer.history("api", namespace)[-1]["description"].endswith(
        subprocess.run(
            ["git", "-C", str(project), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )


def reviewed_plan_commands(platform: str) -> list[str]:
    text = DOC.read_text().split("## Apply exactly the reviewed plan", 1)[1].split("\n## ", 1)[0]
    part = text.split(f"### On {platform}", 1)[1].split("\n### ", 1)[0]
    blocks = "\n".join(re.findall(r"```yaml\n(.*?)```", part, flags=re.S))
    return [c.strip() for c in re.findall(r"^\s*(?:- )?(deployer [^\n]+)$", blocks, flags=re.M)]


def test_the_reviewed_plan_commands_apply_the_plan_and_refuse_a_moved_cluster(
    tmp_path: Path, namespace: str, helm: Path, kubeconfig: Path, cache: Path
) -> None:
    """docs/ci.md's plan-on-PR / apply-the-plan-on-merge commands: the same on GitHub and GitLab;
    the plan is applied; the same plan once the cluster moved is refused, naming the release."""
    assert (
        reviewed_plan_commands("GitHub")
        == reviewed_plan_commands("GitLab")
        == [
            "deployer diff -e prod --save-plan plan-prod.plan.json --output markdown > plan.md",
            "deployer apply -e prod --yes --plan plan-prod.plan.json --output json > run.json",
        ]
    )
    suffix = f"-{namespace[-8:]}"
    project = copy_example(tmp_path / "gitops", namespace=namespace, env_suffix=suffix)
    deployer = Deployer(project, helm, kubeconfig, cache)

    def run(command: str) -> tuple[int, str, str]:
        words = shlex.split(command)[1:]
        target = words[words.index(">") + 1]
        words = [f"prod{suffix}" if w == "prod" else w for w in words[: words.index(">")]]
        result = deployer(*words)
        (project / target).write_text(result.out)
        return result.code, result.out, result.err

    plan, apply = reviewed_plan_commands("GitHub")
    code, out, err = run(plan)
    assert code == 0, err
    assert out.startswith(f"### deployer plan for `prod{suffix}`")
    code, out, err = run(apply)
    assert code == 0, err
    assert json.loads(out)["ok"] is True
    assert deployer.revision("api", namespace) == 1
    # A second pull request's plan, then a change behind its back: the merge job refuses it.
    overlay = project / "environments" / f"prod{suffix}" / "values.yaml"
    overlay.write_text(overlay.read_text().replace("replicaCount: 3", "replicaCount: 4"))
    assert run(plan)[0] == 0
    deployer.helm_cmd("rollback", "worker", "1", "-n", namespace)
    code, out, err = run(apply)
    assert code == 1
    assert f"{namespace}/worker: revision 1 is now 2 (applied at " in err
    assert deployer.revision("api", namespace) == 1
