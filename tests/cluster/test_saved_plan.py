"""`diff --save-plan` then `apply --plan` against the sandbox, on both helm majors: the reviewed plan
is applied and converges; a cluster or spec that moved since the plan is refused with the reason per
release and nothing changed; the plan file holds no trace of a sensitive value."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testing.cluster_run import Deployer
from testing.example import copy_example

RELEASES = ("platform-config", "api", "worker")


@pytest.fixture
def deployer(tmp_path: Path, namespace: str, helm: Path, kubeconfig: Path, cache: Path) -> Deployer:
    project = copy_example(tmp_path / "gitops", namespace=namespace, env_suffix=f"-{namespace[-8:]}")
    return Deployer(project, helm, kubeconfig, cache)


def env(namespace: str) -> str:
    return f"dev-{namespace[-8:]}"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def revisions(deployer: Deployer, namespace: str) -> dict[str, int]:
    return {name: deployer.revision(name, namespace) for name in RELEASES}


def test_the_saved_plan_is_applied_and_converges(deployer: Deployer, namespace: str, tmp_path: Path) -> None:
    e, plan = env(namespace), str(tmp_path / "plan.json")
    saved = deployer("diff", "-e", e, "--save-plan", plan, "--detailed-exitcode")
    assert saved.code == 2, saved.err
    doc = json.loads(Path(plan).read_text())
    assert [(r["key"], r["action"], r["observed"]) for r in doc["releases"]] == [
        (f"{namespace}/{name}", "install", None) for name in sorted(RELEASES)
    ]
    assert doc["environment"] == e
    applied = deployer("apply", "-e", e, "--plan", plan)
    assert applied.code == 0, applied.err
    assert "the fresh plan matches" in applied.err
    assert revisions(deployer, namespace) == dict.fromkeys(RELEASES, 1)
    assert deployer("diff", "-e", e, "--detailed-exitcode").code == 0
    assert deployer("apply", "-e", e).out.startswith("No changes")
    assert revisions(deployer, namespace) == dict.fromkeys(RELEASES, 1)
    # The same plan again: it was made against releases that were not installed.
    again = deployer("apply", "-e", e, "--plan", plan)
    assert again.code == 1
    assert f"{namespace}/api: not installed when planned, now at revision 1 (applied at " in again.err
    assert revisions(deployer, namespace) == dict.fromkeys(RELEASES, 1)


def test_a_hand_upgrade_since_the_plan_refuses_it_and_changes_nothing(
    deployer: Deployer, namespace: str, tmp_path: Path
) -> None:
    e, plan = env(namespace), str(tmp_path / "plan.json")
    assert deployer("apply", "-e", e).code == 0
    edit(deployer.project / "environments" / e / "values.yaml", "api:\n", "api:\n  replicaCount: 2\n")
    assert deployer("diff", "-e", e, "--save-plan", plan).code == 0
    deployer.helm_cmd(
        "upgrade", "api", str(deployer.project / "charts" / "web"), "-n", namespace, "--reuse-values",
        "--set", "replicaCount=3",
    )  # fmt: skip
    refused = deployer("apply", "-e", e, "--plan", plan)
    assert refused.code == 1
    assert f"{namespace}/api: revision 1 is now 2 (applied at " in refused.err
    assert "outside deployer: Upgrade complete" in refused.err
    assert "nothing was changed" in refused.err
    assert "Traceback" not in refused.err
    assert revisions(deployer, namespace) == {"platform-config": 1, "api": 2, "worker": 1}


def test_another_apply_and_a_republished_chart_since_the_plan_are_named(
    deployer: Deployer, namespace: str, tmp_path: Path
) -> None:
    e, plan = env(namespace), str(tmp_path / "plan.json")
    overlay = deployer.project / "environments" / e / "values.yaml"
    assert deployer("apply", "-e", e).code == 0
    edit(overlay, "api:\n", "api:\n  replicaCount: 2\n")
    assert deployer("diff", "-e", e, "--save-plan", plan).code == 0
    # A teammate's apply of another value lands first.
    reviewed = overlay.read_text()
    edit(overlay, "replicaCount: 2", "replicaCount: 3")
    other = deployer("apply", "-e", e, "--output", "json")
    assert other.code == 0, other.err
    run_id = json.loads(other.out)["runId"]
    overlay.write_text(reviewed)
    # ...and a chart is changed under the same version (platform-config: the example's worker now
    # comes from a repository, whose archive the lock file's digest pins).
    template = deployer.project / "charts" / "platform-config" / "templates" / "configmap.yaml"
    template.write_text(template.read_text() + "\n# republished\n")
    refused = deployer("apply", "-e", e, "--plan", plan)
    assert refused.code == 1
    lines = [line.strip() for line in refused.err.splitlines()]
    assert any(
        line.startswith(f"{namespace}/api: revision 1 is now 2 (applied at ")
        and line.endswith(f"by run {run_id})")
        for line in lines
    ), refused.err
    assert f"{namespace}/platform-config: chart platform-config 0.1.0 digest changed" in lines, refused.err
    assert revisions(deployer, namespace) == {"platform-config": 1, "api": 2, "worker": 1}


def test_a_plan_with_a_sensitive_value_holds_no_trace_of_it(
    deployer: Deployer, namespace: str, tmp_path: Path
) -> None:
    """secret.apiKey is `sensitive:` and rendered into the api Secret."""
    e, plan = env(namespace), tmp_path / "plan.json"
    canary = "canary-s3cr3t-5be1"
    saved = deployer("diff", "-e", e, "--save-plan", str(plan), env={"API_KEY": canary})
    assert saved.code == 0, saved.err
    text = plan.read_text()
    assert canary not in text
    assert hashlib.sha256(canary.encode()).hexdigest() not in text
    assert hashlib.sha256(f'"{canary}"'.encode()).hexdigest() not in text
    assert "Y2FuYXJ5" not in text  # base64 of its start, as in the Secret's data
    applied = deployer("apply", "-e", e, "--plan", str(plan), env={"API_KEY": canary})
    assert applied.code == 0, applied.err
    # Another key at apply time: the values differ, and the message does not say how.
    edit(deployer.project / "environments" / e / "values.yaml", "api:\n", "api:\n  replicaCount: 2\n")
    assert deployer("diff", "-e", e, "--save-plan", str(plan), env={"API_KEY": canary}).code == 0
    refused = deployer("apply", "-e", e, "--plan", str(plan), env={"API_KEY": "another-key"})
    assert refused.code == 1
    assert f"{namespace}/api: values differ" in refused.err
    assert "another-key" not in refused.err + refused.out
    assert deployer.revision("api", namespace) == 1


def test_a_plan_with_nothing_to_do_says_so(deployer: Deployer, namespace: str, tmp_path: Path) -> None:
    e, plan = env(namespace), str(tmp_path / "plan.json")
    assert deployer("apply", "-e", e).code == 0
    assert deployer("diff", "-e", e, "--save-plan", plan).code == 0
    result = deployer("apply", "-e", e, "--plan", plan)
    assert result.code == 0, result.err
    assert result.out == f"No changes: the plan in {plan} has nothing to do; nothing was changed.\n"
    assert revisions(deployer, namespace) == dict.fromkeys(RELEASES, 1)


def test_apply_live_upgrades_only_the_release_whose_live_object_drifted(
    deployer: Deployer, namespace: str, kubeconfig: Path
) -> None:
    e = env(namespace)
    assert deployer("apply", "-e", e).code == 0
    kubectl = ["kubectl", "--kubeconfig", str(kubeconfig), "-n", namespace]
    subprocess.run([*kubectl, "scale", "deployment/api", "--replicas=4"], check=True, capture_output=True)
    patch = '{"data": {"LOG_LEVEL": "trace"}}'
    subprocess.run([*kubectl, "patch", "configmap/api", "-p", patch], check=True, capture_output=True)
    live = deployer("diff", "-e", e, "--live", "--detailed-exitcode")
    assert live.code == 2, live.err
    assert "replicas: 4" in live.out
    assert "LOG_LEVEL: trace" in live.out
    assert deployer("apply", "-e", e).out.startswith("No changes")  # without --live: the stored manifest
    applied = deployer("apply", "-e", e, "--live")
    assert applied.code == 0, applied.err
    assert f"{namespace}/api\tupgrade\tsucceeded" in applied.out
    assert revisions(deployer, namespace) == {"platform-config": 1, "api": 2, "worker": 1}
    replicas = subprocess.run(
        [*kubectl, "get", "deployment/api", "-o", "jsonpath={.spec.replicas}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert replicas == "1"  # the chart's replicaCount
    level = subprocess.run(
        [*kubectl, "get", "configmap/api", "-o", "jsonpath={.data.LOG_LEVEL}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert level == "debug"  # values/api.yaml's config.logLevel
    assert deployer("diff", "-e", e, "--live", "--detailed-exitcode").code == 0


def test_the_ci_plan_script_saves_a_plan_that_apply_takes(
    deployer: Deployer, namespace: str, tmp_path: Path
) -> None:
    """The action's and the GitLab template's plan step with save-plan, then the merge job's apply."""
    e = env(namespace)
    environ = {k: v for k, v in os.environ.items() if k not in ("GITHUB_OUTPUT",)}
    environ |= {k: v for k, v in deployer.env().items() if v is not None}
    environ["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "deployer.ci.plan", "-e", e, "--save-plan", "--out-dir", str(out)],
        cwd=deployer.project,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    outputs = dict(line.split("=", 1) for line in (out / "plan.env").read_text().splitlines())
    plan = outputs["DEPLOYER_PLAN_FILE"]
    assert plan == str((out / f"plan-{e}.plan.json").resolve())
    applied = deployer("apply", "-e", e, "--plan", plan)
    assert applied.code == 0, applied.err
    assert revisions(deployer, namespace) == dict.fromkeys(RELEASES, 1)


def test_a_live_plan_is_applied_with_its_drift_repairs(
    deployer: Deployer, namespace: str, kubeconfig: Path, tmp_path: Path
) -> None:
    e, plan = env(namespace), str(tmp_path / "plan.json")
    assert deployer("apply", "-e", e).code == 0
    kubectl = ["kubectl", "--kubeconfig", str(kubeconfig), "-n", namespace]
    subprocess.run([*kubectl, "scale", "deployment/api", "--replicas=4"], check=True, capture_output=True)
    saved = deployer("diff", "-e", e, "--live", "--save-plan", plan, "--detailed-exitcode")
    assert saved.code == 2, saved.err
    applied = deployer("apply", "-e", e, "--plan", plan)  # no --live: the plan was made with it
    assert applied.code == 0, applied.err
    assert revisions(deployer, namespace) == {"platform-config": 1, "api": 2, "worker": 1}
    assert deployer("diff", "-e", e, "--live", "--detailed-exitcode").code == 0


def test_a_release_setting_or_hook_changed_since_the_plan_is_named(
    deployer: Deployer, namespace: str, tmp_path: Path
) -> None:
    """A reviewed plan is also how helm runs each release and which commands run around it: a
    timeout or hook edited after the review refuses the plan, named, and changes nothing."""
    e, plan = env(namespace), str(tmp_path / "plan.json")
    spec = deployer.project / "deployer.yaml"
    assert deployer("apply", "-e", e).code == 0
    edit(deployer.project / "environments" / e / "values.yaml", "api:\n", "api:\n  replicaCount: 2\n")
    assert deployer("diff", "-e", e, "--save-plan", plan).code == 0
    doc = json.loads(Path(plan).read_text())
    api = next(r for r in doc["releases"] if r["key"] == f"{namespace}/api")
    assert api["settings"]["timeout"] == 120 and api["settings"]["atomic"] is True
    edit(
        spec,
        "  - name: api\n    chart: ./charts/web\n",
        "  - name: api\n    chart: ./charts/web\n    timeout: 600\n",
    )
    edit(spec, "is up in $DEPLOYER_NAMESPACE", "is up (edited) in $DEPLOYER_NAMESPACE")
    refused = deployer("apply", "-e", e, "--plan", plan)
    assert refused.code == 1
    lines = [line.strip() for line in refused.err.splitlines()]
    assert f"{namespace}/api: settings changed: timeout 120 -> 600" in lines, refused.err
    assert f"{namespace}/api: its hooks changed (the commands apply runs around it)" in lines, refused.err
    assert not any(line.startswith(f"{namespace}/worker:") for line in lines), refused.err
    assert revisions(deployer, namespace) == dict.fromkeys(RELEASES, 1)
