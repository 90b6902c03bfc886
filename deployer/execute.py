"""Run a plan: install/upgrade/uninstall releases through helm in `needs` order, each as soon as what
it needs has succeeded (no level barriers), and roll the run back when asked and something failed.

No printing: progress goes to the `on_event` callback; the result is a RunReport.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployer.charts import ChartStore
from deployer.errors import HelmError
from deployer.helm import Helm
from deployer.observed import ENV_LABEL, PROJECT_LABEL, RUN_LABEL
from deployer.plan import INSTALL, PRUNE, UNINSTALL, UPGRADE, Plan, ReleasePlan
from deployer.project import DesiredRelease
from deployer.render import private_dir, write_values

SUCCEEDED, FAILED, SKIPPED, ROLLED_BACK, REMOVED = (
    "succeeded",
    "failed",
    "skipped",
    "rolled back",
    "uninstalled",
)


@dataclass
class StepResult:
    key: str
    action: str
    status: str = "pending"
    detail: str = ""
    revision_before: int | None = None
    started: float = 0.0
    finished: float = 0.0
    restored: str = ""  # what the run's rollback did to this release

    @property
    def elapsed(self) -> float:
        return max(0.0, self.finished - self.started) if self.started else 0.0


@dataclass
class RunReport:
    environment: str
    run_id: str
    steps: list[StepResult] = field(default_factory=list)
    rolled_back: bool = False

    @property
    def ok(self) -> bool:
        return all(s.status == SUCCEEDED for s in self.steps)


Event = Callable[[StepResult], None]


@dataclass
class Executor:
    helm: Helm
    charts: ChartStore
    kube_flags: Sequence[str]
    environment: str
    run_id: str
    description: str
    project: str = "default"
    concurrency: int = 4
    on_event: Event = lambda _step: None

    def upgrade_args(self, release: DesiredRelease, chart: Path, values_file: Path) -> list[str]:
        args = [
            "upgrade",
            "--install",
            release.name,
            str(chart),
            "--namespace",
            release.namespace,
            "--create-namespace",
            "--values",
            str(values_file),
            "--timeout",
            f"{release.timeout}s",
            "--labels",
            f"{PROJECT_LABEL}={self.project},{ENV_LABEL}={self.environment},{RUN_LABEL}={self.run_id}",
            "--description",
            self.description,
            *self.kube_flags,
        ]
        if release.wait:
            args.append(self.helm.wait_flag())
        if release.atomic:
            args.append("--atomic" if self.helm.major < 4 else "--rollback-on-failure")
        return args

    async def run(
        self,
        plan: Plan,
        desired: Mapping[str, DesiredRelease],
        values: Mapping[str, Any],
        *,
        rollback_on_failure: bool,
    ) -> RunReport:
        steps = {r.key: r for r in plan.releases if r.action in (INSTALL, UPGRADE, UNINSTALL, PRUNE)}
        report = RunReport(self.environment, self.run_id)
        results = {
            k: StepResult(k, steps[k].action, revision_before=steps[k].revision) for k in sorted(steps)
        }
        report.steps = list(results.values())
        done: dict[str, asyncio.Event] = {k: asyncio.Event() for k in steps}
        limit = asyncio.Semaphore(max(1, self.concurrency))
        order: list[str] = []  # completion order of changed releases, for a reverse rollback

        def waits_for(step: ReleasePlan) -> list[str]:
            if step.action in (INSTALL, UPGRADE):
                return [n for n in step.needs if n in steps and steps[n].action in (INSTALL, UPGRADE)]
            # Removing: first remove what needs this release.
            return [k for k, s in steps.items() if s.action in (UNINSTALL, PRUNE) and step.key in s.needs]

        with private_dir() as tmp:

            async def one(step: ReleasePlan) -> None:
                result = results[step.key]
                try:
                    for dep in waits_for(step):
                        await done[dep].wait()
                    blocked = [d for d in waits_for(step) if results[d].status != SUCCEEDED]
                    if blocked:
                        result.status = SKIPPED
                        result.detail = "not started: " + ", ".join(
                            f"{d} {results[d].status}" for d in blocked
                        )
                        self.on_event(result)
                        return
                    async with limit:
                        result.started = time.monotonic()
                        result.status = "running"
                        self.on_event(result)
                        try:
                            await self._apply_one(step, desired.get(step.key), values, tmp)
                            result.status = SUCCEEDED
                            order.append(step.key)
                        except HelmError as exc:
                            result.status = FAILED
                            result.detail = exc.stderr.splitlines()[-1] if exc.stderr else exc.message
                        result.finished = time.monotonic()
                        self.on_event(result)
                finally:
                    done[step.key].set()

            await asyncio.gather(*(one(steps[k]) for k in sorted(steps)))
            if rollback_on_failure and not report.ok:
                report.rolled_back = True
                for key in reversed(order):
                    await self._restore(steps[key], results[key])
        return report

    async def _apply_one(
        self, step: ReleasePlan, release: DesiredRelease | None, values: Mapping[str, Any], tmp: Path
    ) -> None:
        if step.action in (UNINSTALL, PRUNE):
            await self.helm.uninstall(step.name, step.namespace, self.kube_flags)
            return
        assert release is not None
        chart = await self.charts.get(release.chart)
        values_file = write_values(tmp, f"{release.namespace}-{release.name}", values[release.key])
        await self.helm.run(
            self.upgrade_args(release, chart, values_file), release=release.key, timeout=release.timeout + 60
        )

    async def _restore(self, step: ReleasePlan, result: StepResult) -> None:
        """Put one release back as it was before this run."""
        try:
            if step.action in (UNINSTALL, PRUNE):
                result.restored = "not restored: uninstalled releases cannot be rolled back"
            elif result.revision_before is None:
                await self.helm.uninstall(step.name, step.namespace, self.kube_flags)
                result.restored = "uninstalled (installed fresh by this run)"
            else:
                await self.helm.rollback(step.name, step.namespace, result.revision_before, self.kube_flags)
                result.restored = f"rolled back to revision {result.revision_before}"
            result.status = (
                ROLLED_BACK if result.restored.startswith(("rolled", "uninstalled")) else result.status
            )
        except HelmError as exc:
            result.restored = f"rollback failed: {exc.stderr.splitlines()[-1] if exc.stderr else exc.message}"
        self.on_event(result)
