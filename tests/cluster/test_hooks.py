"""Release hooks against the sandbox, on both helm majors: when each event runs relative to helm,
what a failing or hanging hook does to the run, what a hook is told, and that diff runs none."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from testing.cluster_run import Deployer
from testing.example import copy_example

# Each hook appends "<event> <release or -> <the release's latest revision as helm reports it>" to
# events.log: the revision proves whether helm had finished (or started) when the hook ran.
RECORDER = """\
import json, os, subprocess, sys
release, namespace = os.environ["DEPLOYER_RELEASE"], os.environ["DEPLOYER_NAMESPACE"]
seen = "-"
if release:
    out = subprocess.run(
        [os.environ["DEPLOYER_HELM"], "history", release, "--namespace", namespace, "--output", "json",
         "--kube-context", os.environ["DEPLOYER_KUBE_CONTEXT"]],  # KUBECONFIG: the hook's environment
        capture_output=True, text=True,
    )
    history = json.loads(out.stdout) if out.returncode == 0 and out.stdout.strip() else []
    seen = f"{history[-1]['status']}@{history[-1]['revision']}" if history else "none"
with open("events.log", "a") as log:
    log.write(f"{os.environ['DEPLOYER_EVENT']} {release or '-'} {seen}\\n")
"""
ALL_EVENTS = "[preapply, presync, postsync, preuninstall, postuninstall, cleanup]"


@pytest.fixture
def deployer(tmp_path: Path, namespace: str, helm: Path, kubeconfig: Path, cache: Path) -> Deployer:
    project = copy_example(tmp_path / "gitops", namespace=namespace, env_suffix=f"-{namespace[-8:]}")
    # Each test declares its own hooks: the example's own (api's postsync echo) is taken out.
    spec = project / "deployer.yaml"
    spec.write_text(re.sub(r"^    hooks:\n(^      .*\n)+", "", spec.read_text(), count=1, flags=re.M))
    assert "hooks:" not in spec.read_text()
    (project / "record.py").write_text(RECORDER)
    return Deployer(project, helm, kubeconfig, cache)


def add_hooks(deployer: Deployer, defaults: str = "", **releases: str) -> None:
    """Insert `hooks:` YAML (indented for its place) under defaults and under named releases."""
    spec = deployer.project / "deployer.yaml"
    text = spec.read_text()
    if defaults:
        text = text.replace(
            "  sensitive: [secret.apiKey]\n", f"  sensitive: [secret.apiKey]\n  hooks:\n{defaults}", 1
        )
    for name, hooks in releases.items():
        marker = f"  - name: {name.replace('_', '-')}\n"
        assert marker in text
        text = text.replace(marker, f"{marker}    hooks:\n{hooks}", 1)
    spec.write_text(text)


def command(*argv: str) -> str:
    return json.dumps([sys.executable, *argv])


def events(deployer: Deployer) -> list[str]:
    log = deployer.project / "events.log"
    return log.read_text().splitlines() if log.exists() else []


def test_hooks_run_in_order_around_helm_and_only_when_a_release_changes(
    deployer: Deployer, namespace: str
) -> None:
    e = f"dev-{namespace[-8:]}"
    add_hooks(deployer, f"    - events: {ALL_EVENTS}\n      command: {command('record.py')}\n")
    result = deployer("apply", "-e", e)
    assert result.code == 0, result.err
    assert events(deployer) == [
        "preapply - -",
        "presync platform-config none",  # before helm: no revision yet
        "postsync platform-config deployed@1",  # after helm: installed and ready
        "presync api none",
        "postsync api deployed@1",
        "presync worker none",
        "postsync worker deployed@1",
        "cleanup - -",
    ]
    assert f"{namespace}/api postsync: running `" in result.err  # each hook's run is in the log

    # Nothing changed: no hook runs, and the plan converges.
    assert deployer("diff", "-e", e, "--detailed-exitcode").code == 0
    again = deployer("apply", "-e", e)
    assert again.code == 0, again.err
    assert again.out == f"No changes: 3 release(s) in {e} are up to date.\n"
    assert len(events(deployer)) == 8
    assert {deployer.revision(r, namespace) for r in ("platform-config", "api", "worker")} == {1}

    # rollback runs presync/postsync around each release it rolls back; destroy the uninstall hooks.
    overlay = deployer.project / "environments" / e / "values.yaml"
    overlay.write_text(overlay.read_text() + "worker:\n  concurrency: 7\n")
    assert deployer("apply", "-e", e).code == 0
    rolled = deployer("rollback", "-e", e)
    assert rolled.code == 0, rolled.err
    destroyed = deployer("destroy", "-e", e, "--yes")
    assert destroyed.code == 0, destroyed.err
    assert events(deployer)[8:] == [
        "preapply - -",
        "presync worker deployed@1",
        "postsync worker deployed@2",
        "cleanup - -",
        "preapply - -",
        "presync worker deployed@2",
        "postsync worker deployed@3",  # helm's rollback made revision 3
        "cleanup - -",
        "preapply - -",
        "preuninstall worker deployed@3",
        "postuninstall worker none",
        "preuninstall api deployed@1",
        "postuninstall api none",
        "preuninstall platform-config deployed@1",
        "postuninstall platform-config none",
        "cleanup - -",
    ]


def test_a_failing_presync_fails_its_release_skips_its_dependents_and_installs_nothing(
    deployer: Deployer, namespace: str
) -> None:
    e = f"dev-{namespace[-8:]}"
    refuse = "print('checking schema'); print('migration refused: schema locked'); raise SystemExit(4)"
    add_hooks(
        deployer,
        f"    - events: [cleanup]\n      command: {command('record.py')}\n",
        api=f"      - events: [presync]\n        command: {command('-c', refuse)}\n",
    )
    result = deployer("apply", "-e", e, "--output", "json")
    assert result.code == 1, result.err
    report = json.loads(result.out)
    steps = {s["key"]: s for s in report["releases"]}
    assert steps[f"{namespace}/platform-config"]["status"] == "succeeded"
    assert steps[f"{namespace}/api"]["status"] == "failed"
    detail = steps[f"{namespace}/api"]["detail"]
    assert detail.startswith("presync hook `")
    assert detail.endswith("exited with code 4: checking schema | migration refused: schema locked")
    assert steps[f"{namespace}/worker"]["status"] == "skipped"
    assert steps[f"{namespace}/worker"]["detail"] == f"not started: {namespace}/api failed"
    assert (deployer.revision("api", namespace), deployer.revision("worker", namespace)) == (0, 0)
    # A quiet hook's output is logged when it fails, under its release and event.
    assert f"{namespace}/api presync| migration refused: schema locked" in result.err
    assert report["runHooks"] == [
        {"event": "cleanup", "status": "succeeded", "detail": "", "seconds": report["runHooks"][0]["seconds"]}
    ]
    assert events(deployer) == ["cleanup - -"]


def test_a_hook_past_its_timeout_is_killed_and_fails_its_release(deployer: Deployer, namespace: str) -> None:
    e = f"dev-{namespace[-8:]}"
    hang = "import time; print('waiting for the lock', flush=True); time.sleep(600)"
    add_hooks(
        deployer,
        platform_config=f"      - events: [presync]\n        command: {command('-c', hang)}\n"
        "        timeout: 3\n",
    )
    result = deployer("apply", "-e", e)
    assert result.code == 1
    lines = dict(line.split("\t", 1) for line in result.out.splitlines()[:-1])
    assert lines[f"{namespace}/platform-config"].startswith("install\tfailed\tpresync hook `")
    assert lines[f"{namespace}/platform-config"].endswith("timed out after 3s (killed): waiting for the lock")
    assert lines[f"{namespace}/api"] == f"install\tskipped\tnot started: {namespace}/platform-config failed"
    assert result.out.splitlines()[-1].startswith("Apply FAILED: 1 failed, 2 skipped.")
    assert all(deployer.revision(r, namespace) == 0 for r in ("platform-config", "api", "worker"))


def test_a_hook_is_told_the_release_the_run_and_the_cluster(
    deployer: Deployer, namespace: str, kubeconfig: Path
) -> None:
    e = f"dev-{namespace[-8:]}"
    # No kubectl: the hook reads the kubeconfig it is given and finds the context it is told.
    told = ("EVENT", "RELEASE", "NAMESPACE", "ENVIRONMENT", "PROJECT", "RUN_ID", "KUBE_CONTEXT", "CHART")
    names = [f"DEPLOYER_{n}" for n in told] + ["DEPLOYER_CHART_VERSION", "KUBECONFIG"]
    probe = (
        f"import json, os, yaml; env = {{k: os.environ.get(k) for k in {names!r}}}; "
        "config = yaml.safe_load(open(env['KUBECONFIG'].split(os.pathsep)[0])); "
        "env['context found'] = any(c['name'] == env['DEPLOYER_KUBE_CONTEXT'] for c in config['contexts']); "
        "json.dump(env, open('seen.json', 'w'))"
    )
    add_hooks(
        deployer, platform_config=f"      - events: [postsync]\n        command: {command('-c', probe)}\n"
    )
    result = deployer("apply", "-e", e, "-l", "name=platform-config")
    assert result.code == 0, result.err
    run_id = result.out.splitlines()[-1].rsplit(" ", 1)[-1].rstrip(".")
    context = yaml.safe_load(kubeconfig.read_text())["current-context"]
    chart = yaml.safe_load((deployer.project / "charts" / "platform-config" / "Chart.yaml").read_text())
    assert json.loads((deployer.project / "seen.json").read_text()) == {
        "DEPLOYER_EVENT": "postsync",
        "DEPLOYER_RELEASE": "platform-config",
        "DEPLOYER_NAMESPACE": namespace,
        "DEPLOYER_ENVIRONMENT": e,
        "DEPLOYER_PROJECT": "gitops",
        "DEPLOYER_RUN_ID": run_id,
        "DEPLOYER_KUBE_CONTEXT": context,
        "DEPLOYER_CHART": "platform-config",
        "DEPLOYER_CHART_VERSION": str(chart["version"]),
        "KUBECONFIG": str(kubeconfig),
        "context found": True,
    }


TOUCH = 'open("ran", "w")'


def test_diff_lists_the_hooks_and_runs_none(deployer: Deployer, namespace: str) -> None:
    e = f"dev-{namespace[-8:]}"
    add_hooks(
        deployer,
        f"    - events: {ALL_EVENTS}\n      command: {command('record.py')}\n",
        api=f"      - events: [presync]\n        command: {command('-c', TOUCH)}\n",
    )
    result = deployer("diff", "-e", e)
    assert result.code == 0, result.err
    assert "    hooks deployer runs (commands from the spec; diff runs none):\n" in result.out
    assert f'      presync       {sys.executable} -c \'open("ran", "w")\'    (deployer.yaml:' in result.out
    assert "  preapply      " in result.out and "  cleanup       " in result.out
    plan = json.loads(deployer("diff", "-e", e, "--output", "json").out)
    api = next(r for r in plan["releases"] if r["key"] == f"{namespace}/api")
    assert [h["event"] for h in api["deployerHooks"]] == ["presync", "presync", "postsync"]
    assert "Hooks deployer runs" in deployer("diff", "-e", e, "--output", "markdown").out
    for verb in (["validate"], ["template", "-e", e], ["values", "-e", e, "api"], ["status", "-e", e]):
        assert deployer(*verb).code == 0, verb
    assert not (deployer.project / "ran").exists()
    assert events(deployer) == []


def test_a_failing_postsync_fails_its_release_after_helm_and_the_run_rolls_it_back(
    deployer: Deployer, namespace: str
) -> None:
    e = f"dev-{namespace[-8:]}"
    assert deployer("apply", "-e", e).code == 0
    before = deployer.manifest("api", namespace)
    smoke = "print('GET /healthz: 503'); raise SystemExit(1)"
    add_hooks(deployer, api=f"      - events: [postsync]\n        command: {command('-c', smoke)}\n")
    overlay = deployer.project / "environments" / e / "values.yaml"
    overlay.write_text(overlay.read_text().replace("api:\n", "api:\n  replicaCount: 2\n", 1))
    result = deployer("apply", "-e", e, "--rollback-on-failure", "--output", "json")
    assert result.code == 1, result.err
    api = next(s for s in json.loads(result.out)["releases"] if s["key"] == f"{namespace}/api")
    assert api["status"] == "failed"
    assert api["detail"].startswith("postsync hook `")
    assert api["detail"].endswith("exited with code 1: GET /healthz: 503")
    assert api["restored"] == "rolled back to revision 1"
    # helm had applied it (revision 2) before the hook ran; the run's rollback put it back.
    assert [(h["revision"], h["status"]) for h in deployer.history("api", namespace)][-2:] == [
        (2, "superseded"),
        (3, "deployed"),
    ]
    assert deployer.manifest("api", namespace) == before


def test_a_failing_preapply_changes_nothing_and_a_failing_cleanup_fails_the_run(
    deployer: Deployer, namespace: str
) -> None:
    e = f"dev-{namespace[-8:]}"
    frozen = "print('change freeze until Monday'); raise SystemExit(2)"
    add_hooks(
        deployer,
        f"    - events: [preapply]\n      command: {command('-c', frozen)}\n"
        f"    - events: [cleanup]\n      command: {command('record.py')}\n",
    )
    result = deployer("apply", "-e", e)
    assert result.code == 1
    lines = result.out.splitlines()
    assert lines[0].startswith("preapply\thook\tfailed\tpreapply hook `")
    assert lines[0].endswith("exited with code 2: change freeze until Monday")
    assert [line.split("\t")[:3] for line in lines[1:4]] == [
        [f"{namespace}/{r}", "install", "skipped"] for r in ("api", "platform-config", "worker")
    ]
    assert lines[2] == f"{namespace}/platform-config\tinstall\tskipped\tnot started: a preapply hook failed"
    assert lines[4] == "cleanup\thook\tsucceeded"
    assert all(deployer.revision(r, namespace) == 0 for r in ("platform-config", "api", "worker"))
    assert events(deployer) == ["cleanup - -"]

    spec = deployer.project / "deployer.yaml"
    spec.write_text(spec.read_text().replace("raise SystemExit(2)", "pass").replace("record.py", "nope.py"))
    result = deployer("apply", "-e", e)
    assert result.code == 1
    assert result.out.splitlines()[-2].startswith("cleanup\thook\tfailed\tcleanup hook `")
    assert result.out.splitlines()[-1].startswith("Apply FAILED: 3 succeeded.")
    assert all(deployer.revision(r, namespace) == 1 for r in ("platform-config", "api", "worker"))
