"""The executor's own rules, before any helm runs: a release whose need is blocked is skipped with the
reason, and a surprise in one step fails that step, not the run."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from deployer.charts import ChartStore
from deployer.execute import FAILED, SKIPPED, Executor, RunReport
from deployer.helm import Helm
from deployer.plan import Plan, make_plan
from deployer.project import ChartRef
from deployer.repos import RepoManager
from testing.planning import configmap, desired, observed

DOCS = [configmap("cfg", a="1")]


def run(plan: Plan, tmp_path: Path, charts: dict[str, Path]) -> RunReport:
    # A helm that cannot start: any step that reached helm would fail with its error, not be skipped.
    helm = Helm(path=str(tmp_path / "no-helm"), version=(3, 22, 0), home=tmp_path / "helm")
    store = ChartStore(helm, RepoManager(helm, {}), tmp_path / "cache", {})
    releases = {
        r.key: replace(
            desired(r.name, {}, DOCS).release, chart=ChartRef("local", str(charts[r.name]), r.name, None)
        )
        for r in plan.releases
    }
    executor = Executor(
        helm=helm, charts=store, kube_flags=[], environment="prod", run_id="r1", description="test"
    )
    return asyncio.run(executor.run(plan, releases, {key: {} for key in releases}, rollback_on_failure=False))


def test_a_release_whose_need_is_blocked_is_skipped_with_the_reason(tmp_path: Path) -> None:
    plan = make_plan(
        "prod",
        [desired("db", {}, DOCS), desired("api", {}, DOCS, needs=("shop/db",))],
        {"shop/db": observed("db", {}, DOCS, status="pending-upgrade", revision=3)},
    )
    assert [(r.key, r.action) for r in plan.releases] == [("shop/api", "install"), ("shop/db", "blocked")]
    report = run(plan, tmp_path, {"api": tmp_path, "db": tmp_path})
    [step] = report.steps
    assert (step.key, step.status, step.detail) == ("shop/api", SKIPPED, "not started: shop/db blocked")
    assert not report.ok


def test_an_unexpected_error_fails_its_step_and_its_dependents_are_skipped(tmp_path: Path) -> None:
    plan = make_plan("prod", [desired("db", {}, DOCS), desired("api", {}, DOCS, needs=("shop/db",))], {})
    missing = tmp_path / "no-such-chart"  # reading its Chart.yaml raises FileNotFoundError
    report = run(plan, tmp_path, {"api": missing, "db": missing})
    steps = {s.key: s for s in report.steps}
    assert steps["shop/db"].status == FAILED
    assert steps["shop/db"].detail.startswith("internal error: FileNotFoundError: ")
    assert (steps["shop/api"].status, steps["shop/api"].detail) == (SKIPPED, "not started: shop/db failed")
