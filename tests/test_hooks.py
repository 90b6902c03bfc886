"""Release hooks without a cluster: how the spec's hooks attach to a plan, how diff lists them (text,
markdown, JSON), and how a hook runs (argv, environment, timeout, output, masking), with real
processes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from deployer import hookrun, hooks
from deployer.plan import Plan, make_plan
from deployer.project import load_project
from deployer.redact import Redactor
from deployer.report import markdown, text, to_json
from testing.planning import configmap, desired, observed

PY = sys.executable
SPEC = """\
defaults:
  namespace: shop
  hooks:
    - events: [preapply, cleanup]
      command: [./notify.sh, "${TOKEN:-none}"]
    - events: [postsync]
      command: [echo, defaults-postsync]
releases:
  - name: api
    chart: ./chart
    hooks:
      - events: [presync, preuninstall]
        command: [./migrate.sh, up]
        timeout: 60
      - events: [preapply]
        command: [./notify.sh, "${TOKEN:-none}"]
  - name: worker
    chart: ./chart
  - name: cron
    chart: ./chart
"""


def project(tmp_path: Path, spec: str = SPEC) -> Path:
    (tmp_path / "chart").mkdir(exist_ok=True)
    (tmp_path / "chart" / "Chart.yaml").write_text("apiVersion: v2\nname: chart\nversion: 0.1.0\n")
    (tmp_path / "deployer.yaml").write_text(spec)
    return tmp_path


def planned(tmp_path: Path, *, changes: bool = True) -> Plan:
    """api to install, worker to upgrade, cron unchanged, gone to prune; or nothing to change."""
    proj = load_project(project(tmp_path), {})
    cm = [configmap("x", a="1")]
    cluster = {
        "shop/worker": observed("worker", {"a": 1}, cm),
        "shop/cron": observed("cron", {}, cm),
        "shop/gone": observed("gone", {}, cm, revision=3),
    }
    if not changes:
        cluster = {
            "shop/api": observed("api", {}, cm),
            "shop/worker": observed("worker", {"a": 2}, cm),
            "shop/cron": observed("cron", {}, cm),
        }
    wanted = [desired("api", {}, cm), desired("worker", {"a": 2}, cm), desired("cron", {}, cm)]
    return hooks.attach(make_plan("prod", wanted, cluster), proj)


def test_a_release_runs_the_hooks_of_defaults_then_its_own_for_its_action(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # marks name deployer.yaml as a user in its directory sees it
    plan = planned(tmp_path)
    by_key = {r.key: r for r in plan.releases}
    api = [(e, h.text, h.source) for e, h in hooks.due(by_key["shop/api"])]  # an install
    assert api == [
        ("presync", "./migrate.sh up", "deployer.yaml:12:9"),
        ("postsync", "echo defaults-postsync", "deployer.yaml:6:7"),
    ]
    assert [e for e, _ in hooks.due(by_key["shop/worker"])] == ["postsync"]  # an upgrade
    assert hooks.due(by_key["shop/cron"]) == []  # unchanged: runs nothing
    # A release that left the spec is pruned with the hooks of defaults (none for an uninstall here).
    assert by_key["shop/gone"].action == "prune" and hooks.due(by_key["shop/gone"]) == []
    # The run's hooks: each distinct one once (the release's preapply is the same command as defaults').
    assert [(e, h.text) for e, h in hooks.due_run(plan)] == [
        ("preapply", "./notify.sh none"),
        ("cleanup", "./notify.sh none"),
    ]


def test_a_plan_with_nothing_to_change_runs_no_hook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # marks name deployer.yaml as a user in its directory sees it
    plan = planned(tmp_path, changes=False)
    assert not plan.has_changes
    assert hooks.due_run(plan) == []
    assert all(hooks.due(r) == [] for r in plan.releases)
    assert "hook" not in text(plan).lower()
    doc = json.loads(to_json(plan))
    assert doc["deployerHooks"] == [] and all(r["deployerHooks"] == [] for r in doc["releases"])


def test_diff_lists_the_hooks_apply_would_run_in_every_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # marks name deployer.yaml as a user in its directory sees it
    plan = planned(tmp_path)
    shown = text(plan)
    assert "    hooks deployer runs (commands from the spec; diff runs none):\n" in shown
    assert "      presync       ./migrate.sh up    (deployer.yaml:12:9)\n" in shown
    assert "      postsync      echo defaults-postsync    (deployer.yaml:6:7)\n" in shown
    assert "Hooks of the run (commands from the spec; diff runs none):\n" in shown
    assert "  preapply      ./notify.sh none    (deployer.yaml:4:7)\n" in shown
    assert "  cleanup       ./notify.sh none    (deployer.yaml:4:7)\n" in shown

    md = markdown(plan)
    assert "**Hooks deployer runs** (commands from the spec; the plan runs none)" in md
    assert "presync       ./migrate.sh up    (deployer.yaml:12:9)" in md
    assert "**Hooks of the run**" in md

    doc = json.loads(to_json(plan))
    assert doc["schemaVersion"] == 2
    assert doc["deployerHooks"][0] == {
        "event": "preapply",
        "command": ["./notify.sh", "none"],
        "timeout": 300,
        "showLogs": False,
        "source": "deployer.yaml:4:7",
    }
    api = next(r for r in doc["releases"] if r["key"] == "shop/api")
    assert [(h["event"], h["command"], h["timeout"]) for h in api["deployerHooks"]] == [
        ("presync", ["./migrate.sh", "up"], 60),
        ("postsync", ["echo", "defaults-postsync"], 300),
    ]


def test_a_secret_in_a_hook_command_is_masked_in_the_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # marks name deployer.yaml as a user in its directory sees it
    plan = planned(tmp_path)
    secret = Redactor(["s3cr3t-token"])  # e.g. a sensitive value a command also names

    def leaky(hs: tuple[hooks.Hook, ...]) -> tuple[hooks.Hook, ...]:
        return tuple(replace(h, command=(*h.command, "s3cr3t-token")) for h in hs)

    plan = replace(
        plan,
        releases=tuple(replace(r, commands=leaky(r.commands), redactor=secret) for r in plan.releases),
        commands=leaky(plan.commands),
    )
    for out in (text(plan), markdown(plan), to_json(plan)):
        assert "s3cr3t-token" not in out
        assert "<sensitive>" in out or "\\u003csensitive\\u003e" in out


# --- running hooks: real processes ---------------------------------------------------------------


def context(root: Path) -> hookrun.Context:
    return hookrun.Context(
        root=root,
        project="shop",
        environment="dev",
        run_id="20261203T000000Z-abcdef",
        kube_context="sandbox",
        kubeconfig="/tmp/kubeconfig-a:/tmp/kubeconfig-b",
        environ={"PATH": os.environ["PATH"], "KEEP_ME": "yes", "DEPLOYER_RELEASE": "stale"},
    )


def hook(
    *command: str, events: tuple[str, ...] = ("presync",), timeout: int = 60, show: bool = False
) -> hooks.Hook:
    return hooks.Hook(events, command, timeout, show, "deployer.yaml:9:7")


SUBJECT = hookrun.Subject("shop/api", "api", "shop", "web", "1.2.0")


def run(runner: hookrun.Runner, h: hooks.Hook, redact: hookrun.Redact = str) -> None:
    asyncio.run(runner.run("presync", h, SUBJECT, redact))


def test_a_hook_runs_as_argv_in_the_spec_directory_with_the_run_in_its_environment(tmp_path: Path) -> None:
    script = (
        "import json, os, sys; json.dump({'cwd': os.getcwd(), 'argv': sys.argv[1:], 'env': "
        "{k: v for k, v in os.environ.items() "
        "if k.startswith('DEPLOYER_') or k in ('KUBECONFIG', 'KEEP_ME')}}, "
        "open('seen.json', 'w'))"
    )
    lines: list[str] = []
    run(hookrun.Runner(context(tmp_path), lines.append), hook(PY, "-c", script, "a b", "$HOME", "*"))
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["cwd"] == str(tmp_path)
    assert seen["argv"] == ["a b", "$HOME", "*"]  # no shell: nothing split, expanded or globbed
    assert seen["env"] == {
        "KEEP_ME": "yes",
        "DEPLOYER_EVENT": "presync",
        "DEPLOYER_PROJECT": "shop",
        "DEPLOYER_ENVIRONMENT": "dev",
        "DEPLOYER_RUN_ID": "20261203T000000Z-abcdef",
        "DEPLOYER_KUBE_CONTEXT": "sandbox",
        "KUBECONFIG": "/tmp/kubeconfig-a:/tmp/kubeconfig-b",
        "DEPLOYER_RELEASE": "api",
        "DEPLOYER_NAMESPACE": "shop",
        "DEPLOYER_CHART": "web",
        "DEPLOYER_CHART_VERSION": "1.2.0",
    }
    assert lines[0].startswith("shop/api presync: running `") and lines[0].endswith("` (deployer.yaml:9:7)")
    assert lines[-1].startswith("shop/api presync: hook succeeded (")


def test_a_quiet_hook_shows_its_output_only_when_it_fails_and_never_a_secret(tmp_path: Path) -> None:
    lines: list[str] = []
    runner = hookrun.Runner(context(tmp_path), lines.append)
    mask = Redactor(["hunter2-password"]).redact
    say = "import sys; print('connecting with hunter2-password'); print('step', 2); sys.exit({code})"
    run(runner, hook(PY, "-c", say.format(code=0)), mask)
    assert not any("| connecting" in line for line in lines)
    lines.clear()
    with pytest.raises(hookrun.HookFailed) as failed:
        run(runner, hook(PY, "-c", say.format(code=3)), mask)
    assert "shop/api presync| connecting with <sensitive>" in lines
    assert "shop/api presync| step 2" in lines
    assert failed.value.detail.startswith("presync hook `")
    assert failed.value.detail.endswith(
        "(deployer.yaml:9:7) exited with code 3: connecting with <sensitive> | step 2"
    )
    assert not any("hunter2" in line for line in [*lines, failed.value.detail])


def test_a_hook_with_show_logs_logs_each_line_as_it_comes(tmp_path: Path) -> None:
    lines: list[str] = []
    table: list[str] = []
    runner = hookrun.Runner(context(tmp_path), lines.append)
    h = hook(PY, "-c", "print('one'); print('two', flush=True)", show=True)
    asyncio.run(runner.run("presync", h, SUBJECT, str, table.append))
    assert [line for line in lines if "|" in line] == ["shop/api presync| one", "shop/api presync| two"]
    assert table[1:] == ["one", "two"]  # the live table's detail


def test_a_hook_past_its_timeout_is_killed_with_its_children_and_fails(tmp_path: Path) -> None:
    child = (
        "import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', 'import time; "
        "time.sleep(600)']); open('child.pid', 'w').write(str(p.pid)); p.wait()"
    )
    with pytest.raises(hookrun.HookFailed) as failed:
        run(hookrun.Runner(context(tmp_path), lambda _m: None), hook(PY, "-c", child, timeout=2))
    assert "timed out after 2s (killed)" in failed.value.detail
    pid = int((tmp_path / "child.pid").read_text())
    for _ in range(100):  # the kill is sent; its delivery is the kernel's
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        asyncio.run(asyncio.sleep(0.1))
    else:
        pytest.fail(f"the hook's child {pid} outlived the hook's timeout")


def test_a_hook_that_cannot_start_is_a_failed_hook(tmp_path: Path) -> None:
    with pytest.raises(hookrun.HookFailed) as failed:
        run(hookrun.Runner(context(tmp_path), lambda _m: None), hook("./no-such-script.sh"))
    assert failed.value.detail == (
        "presync hook `./no-such-script.sh` (deployer.yaml:9:7) could not start: No such file or directory"
    )


def test_a_failed_pre_hook_stops_the_action_and_the_post_hooks(tmp_path: Path) -> None:
    done: list[str] = []

    async def action() -> None:
        done.append("helm")

    runner = hookrun.Runner(context(tmp_path), lambda _m: None)
    pre_fails = [hook(PY, "-c", "raise SystemExit(1)"), hook("true", events=("postsync",))]
    with pytest.raises(hookrun.HookFailed):
        asyncio.run(runner.around(hooks.SYNC, pre_fails, SUBJECT, redact=str, action=action))
    assert done == []
    ordered = [
        hook(PY, "-c", "open('order', 'a').write('presync\\n')"),
        hook(PY, "-c", "open('order', 'a').write('postsync\\n')", events=("postsync",)),
    ]

    async def helm() -> None:
        with open(tmp_path / "order", "a") as f:
            f.write("helm\n")

    asyncio.run(runner.around(hooks.SYNC, ordered, SUBJECT, redact=str, action=helm))
    assert (tmp_path / "order").read_text() == "presync\nhelm\npostsync\n"


def test_destroy_and_rollback_stop_at_a_failed_preapply_and_still_clean_up(tmp_path: Path) -> None:
    """run_changes, the run of destroy and rollback: preapply, each change with its hooks, cleanup."""
    printed: list[str] = []
    done: list[str] = []

    def step(key: str, outcome: str, action: Any) -> bool:  # as commands/session.step does
        asyncio.run(action)
        printed.append(f"{key}\t{outcome}")
        return True

    def change(name: str) -> hookrun.Change:
        async def uninstall() -> None:
            done.append(name)

        subject = hookrun.Subject(f"shop/{name}", name, "shop")
        return hookrun.Change(subject, hooks.UNINSTALL, (), str, "uninstalled", uninstall)

    record = hook(PY, "-c", "import os; open('ran', 'a').write(os.environ['DEPLOYER_EVENT'] + '\\n')")
    gate = hook(PY, "-c", "raise SystemExit(1)", events=("preapply",))
    runner = hookrun.Runner(
        context(tmp_path), lambda _m: None, hooks.in_order([gate, replace(record, events=("cleanup",))])
    )
    ok = hookrun.run_changes(
        runner, [change("api"), change("db")], step=step, stopped=lambda: False, out=printed.append
    )
    assert not ok
    assert done == []
    assert printed[0].startswith("preapply\thook failed: preapply hook `")
    assert printed[1:] == [
        "shop/api\tskipped: not started: a preapply hook failed",
        "shop/db\tskipped: not started: a preapply hook failed",
        "cleanup\thook succeeded",
    ]
    assert (tmp_path / "ran").read_text() == "cleanup\n"
