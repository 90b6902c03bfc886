"""Run a plan: install/upgrade/uninstall releases through helm in the order the plan prints.

Installs and upgrades run in `needs` order, each as soon as what it needs has succeeded (no level
barriers); a release whose need is blocked, failed or skipped is skipped with the reason. Removals
(uninstall, prune) start after every install and upgrade, dependents first. An error in one step
fails that step only; with rollback-on-failure, every release the run touched is put back, the
failed one included.

No printing: progress goes to the `on_event` callback; the result is a RunReport.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployer import cancel, releaseflags
from deployer.charts import ChartStore
from deployer.errors import DeployerError, HelmError
from deployer.helm import Helm
from deployer.hookrun import HookFailed, Runner, Subject
from deployer.hooks import AROUND
from deployer.observed import ENV_LABEL, PROJECT_LABEL, RUN_LABEL
from deployer.plan import BLOCKED, CHANGING, INSTALL, REMOVING, UPGRADE, Plan, ReleasePlan
from deployer.project import DesiredRelease
from deployer.redact import for_values, masked_errors
from deployer.render import private_dir, write_values

if TYPE_CHECKING:
    from deployer.rollout import Diagnosis, Rollout

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
    diagnosis: Diagnosis | None = None  # why it failed, as the cluster showed it (rollout.py)

    @property
    def elapsed(self) -> float:
        return max(0.0, self.finished - self.started) if self.started else 0.0


@dataclass
class RunReport:
    environment: str
    run_id: str
    steps: list[StepResult] = field(default_factory=list)
    rolled_back: bool = False
    hooks: list[StepResult] = field(default_factory=list)  # the run's preapply and cleanup (key: event)
    cancelled_by: str = ""  # the signal that cancelled the run (SIGINT, SIGTERM), if one did

    @property
    def ok(self) -> bool:
        return all(s.status == SUCCEEDED for s in (*self.steps, *self.hooks))


Event = Callable[[StepResult], None]


class _RunState:
    """The steps of one run, their results, and the order rules between them."""

    def __init__(self, plan: Plan) -> None:
        self.steps = {r.key: r for r in plan.releases if r.action in CHANGING}
        self.planned = {r.key: r for r in plan.releases}
        self.results = {
            k: StepResult(k, s.action, revision_before=None if s.replace else s.revision)
            for k, s in sorted(self.steps.items())
        }
        self.done = {k: asyncio.Event() for k in self.steps}

    def prerequisites(self, step: ReleasePlan) -> list[str]:
        """The steps that must succeed first: an install's or upgrade's changing needs; for a
        removal, the removals of what needs it."""
        if step.action in (INSTALL, UPGRADE):
            return [n for n in step.needs if n in self.steps]
        return [k for k, s in self.steps.items() if s.action in REMOVING and step.key in s.needs]

    def waits_for(self, step: ReleasePlan) -> list[str]:
        if step.action in (INSTALL, UPGRADE):
            return self.prerequisites(step)
        # Removals come after every install and upgrade, as the printed apply order says.
        changing = [k for k, s in self.steps.items() if s.action in (INSTALL, UPGRADE)]
        return changing + self.prerequisites(step)

    def blockers(self, step: ReleasePlan) -> list[str]:
        out = [
            f"{d} {self.results[d].status}"
            for d in self.prerequisites(step)
            if self.results[d].status != SUCCEEDED
        ]
        if step.action in (INSTALL, UPGRADE):  # a need that does not change in this run
            out += [
                f"{n} blocked"
                for n in step.needs
                if n not in self.steps and n in self.planned and self.planned[n].action == BLOCKED
            ]
        return out


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
    # Why no further release may start ("" while they may): e.g. the run lost its lock.
    stop_reason: Callable[[], str] = lambda: ""
    # False when the API server validates fields itself (Cluster.validates_fields): helm's own
    # check would then only spend ~0.2 s CPU per release asking the server whether it does.
    openapi_check: bool = True
    # crds: createReplace: applies a release's crds/ CRDs (deployer/crds.py) before its install/upgrade.
    apply_crds: Callable[[DesiredRelease, Path], None] | None = None
    # Follows what installs and upgrades wait for, and explains a failed one (deployer/rollout.py).
    rollout: Rollout | None = None
    # Releases upgraded to repair drift (apply --live) that helm 4 applies server-side: the drifted
    # fields belong to another field manager now (kubectl scale, ...), and taking them back is the point.
    force_conflicts: frozenset[str] = frozenset()
    hooks: Runner = field(default_factory=lambda: Runner(None))  # the spec's hooks (deployer/hooks.py)
    # `apply --test`: tests the releases the run installed or upgraded, once all succeeded;
    # returns why each failing one failed (deployer/helmtest.py). A failed test fails its release.
    test_after: Callable[[list[str]], Awaitable[dict[str, str]]] | None = None

    def upgrade_args(self, release: DesiredRelease, chart: Path, values_file: Path) -> list[str]:
        args = [
            "upgrade",
            "--install",
            release.name,
            str(chart),
            "--namespace",
            release.namespace,
            "--values",
            str(values_file),
            # Values are exactly the merged values we pass: without this, helm reuses the previous
            # release's values when it is given none, and a removed value would stay forever.
            "--reset-values",
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
        if not self.openapi_check:
            args.append("--disable-openapi-validation")
        args += releaseflags.upgrade_args(release.flags, self.helm.major, wait=release.wait)
        if release.crds == "skip":
            args.append("--skip-crds")
        if release.key in self.force_conflicts and self.helm.major >= 4:
            args.append("--force-conflicts")
        return args

    async def run(
        self,
        plan: Plan,
        desired: Mapping[str, DesiredRelease],
        values: Mapping[str, Any],
        *,
        rollback_on_failure: bool,
    ) -> RunReport:
        report = RunReport(self.environment, self.run_id)
        # From here a signal lets running helm and hook processes end and starts nothing more, not
        # even the cleanup hooks (deployer/cancel.py); the report says what each release was left as.
        with cancel.deferred():
            try:
                await self._run(plan, desired, values, report, rollback_on_failure=rollback_on_failure)
            finally:  # cleanup hooks, whatever happened
                await self.hooks.after_run(report, self.on_event)
                report.cancelled_by = cancel.received_name()
        return report

    async def _run(
        self,
        plan: Plan,
        desired: Mapping[str, DesiredRelease],
        values: Mapping[str, Any],
        report: RunReport,
        *,
        rollback_on_failure: bool,
    ) -> None:
        state = _RunState(plan)
        report.steps = list(state.results.values())
        await self.hooks.before_run(report, self.on_event)  # preapply: on failure, no release starts
        limit = asyncio.Semaphore(max(1, self.concurrency))
        touched: list[str] = []  # releases this run changed or tried to, in order, for a reverse rollback

        with private_dir() as tmp, self.rollout or contextlib.nullcontext():

            async def one(step: ReleasePlan) -> None:
                result = state.results[step.key]
                try:
                    for dep in state.waits_for(step):
                        await state.done[dep].wait()
                    blocked = state.blockers(step)
                    if blocked:
                        result.status = SKIPPED
                        result.detail = "not started: " + ", ".join(blocked)
                        self.on_event(result)
                        return
                    async with limit:
                        if stop := self.hooks.failed_before or self.stop_reason() or cancel.reason():
                            result.status = SKIPPED
                            result.detail = f"not started: {stop}"
                            self.on_event(result)
                            return
                        result.started = time.monotonic()
                        result.status = "running"
                        self.on_event(result)
                        touched.append(step.key)
                        await self._step(step, result, desired.get(step.key), values, tmp)
                        result.finished = time.monotonic()
                        self.on_event(result)
                finally:
                    state.done[step.key].set()

            await asyncio.gather(*(one(state.steps[k]) for k in sorted(state.steps)))
            if self.test_after is not None and report.ok and not cancel.reason():
                tested = [k for k in touched if state.steps[k].action in (INSTALL, UPGRADE)]
                for key, why in sorted((await self.test_after(tested)).items()):
                    state.results[key].status, state.results[key].detail = FAILED, why
                    self.on_event(state.results[key])
            # Cancelled: no rollback either (it would start helm again); the report says what was left.
            if rollback_on_failure and not report.ok and touched and not cancel.reason():
                report.rolled_back = True
                for key in reversed(touched):
                    await self._restore(state.steps[key], state.results[key], desired.get(key))

    async def _step(
        self,
        step: ReleasePlan,
        result: StepResult,
        release: DesiredRelease | None,
        values: Mapping[str, Any],
        tmp: Path,
    ) -> None:
        """Apply one step, and say in `result` how it ended (a failure, with why)."""
        if self.rollout is not None:
            self.rollout.begin(step.key)  # nothing for a removal: it knows none
        try:
            await self.hooks.around(
                AROUND[step.action],
                step.commands,
                _subject(step),
                redact=step.redactor.redact,
                action=lambda: self._apply_one(step, release, values, tmp),
                on_line=lambda event, line: self.on_event(replace(result, detail=f"{event}: {line}")),
            )
            result.status = SUCCEEDED
        except HookFailed as exc:
            result.status = FAILED
            result.detail = exc.detail
        except HelmError as exc:
            result.status = FAILED
            result.detail = _failure(exc, release)
            if self.rollout is not None and not cancel.reason():  # cancelled: no time to diagnose
                result.diagnosis = await asyncio.to_thread(self.rollout.diagnose, step.key)
        except DeployerError as exc:  # e.g. a CRD the API server refused
            result.status = FAILED
            result.detail = exc.message
        except Exception as exc:  # one step's surprise must not abandon the others
            result.status = FAILED
            result.detail = f"internal error: {type(exc).__name__}: {exc}"
        if result.status == FAILED and (why := cancel.reason()):  # ended by the signal passed on
            result.detail = f"{why}: {result.detail}"
        if self.rollout is not None:
            self.rollout.end(step.key)

    async def _apply_one(
        self, step: ReleasePlan, release: DesiredRelease | None, values: Mapping[str, Any], tmp: Path
    ) -> None:
        if step.action in REMOVING:
            flags = release.flags if release is not None else releaseflags.ReleaseFlags()
            await self.helm.uninstall(
                step.name, step.namespace, self.kube_flags, extra=releaseflags.uninstall_args(flags)
            )
            return
        assert release is not None
        if step.replace:  # its only revision failed: nothing to upgrade from
            await self.helm.uninstall(
                step.name, step.namespace, self.kube_flags, extra=releaseflags.uninstall_args(release.flags)
            )
        chart = await self.charts.get(release.chart)
        if release.crds == "createReplace" and self.apply_crds is not None:
            await asyncio.to_thread(self.apply_crds, release, chart)
        values_file = write_values(tmp, f"{release.namespace}-{release.name}", values[release.key])
        # helm and the API server quote what they refuse ("Invalid value: ..."): never a secret.
        with masked_errors(for_values(values[release.key], release.sensitive)):
            await self.helm.run(
                self.upgrade_args(release, chart, values_file),
                release=release.key,
                timeout=release.timeout + 60,
            )

    async def _restore(self, step: ReleasePlan, result: StepResult, release: DesiredRelease | None) -> None:
        """Put one release back as it was before this run."""
        flags = release.flags if release is not None else releaseflags.ReleaseFlags()
        if why := cancel.reason():  # cancelled while putting the run back: start no more helm
            result.restored = f"not restored: {why}"
            self.on_event(result)
            return
        try:
            if step.action in REMOVING:
                result.restored = "not restored: uninstalled releases cannot be rolled back"
            elif result.revision_before is None:
                await self.helm.uninstall(
                    step.name, step.namespace, self.kube_flags, extra=releaseflags.uninstall_args(flags)
                )
                result.restored = "uninstalled (installed fresh by this run)"
            else:
                await self.helm.rollback(
                    step.name,
                    step.namespace,
                    result.revision_before,
                    self.kube_flags,
                    extra=releaseflags.rollback_args(flags, self.helm.major),
                )
                result.restored = f"rolled back to revision {result.revision_before}"
            if result.status != FAILED and result.restored.startswith(("rolled", "uninstalled")):
                result.status = ROLLED_BACK
        except HelmError as exc:
            if result.status == FAILED and "not found" in exc.stderr:
                result.restored = "nothing to restore: helm already removed it"
            else:
                why = exc.stderr.splitlines()[-1] if exc.stderr else exc.message
                result.restored = f"rollback failed: {why}"
        self.on_event(result)


def _subject(step: ReleasePlan) -> Subject:
    return Subject(
        step.key, step.name, step.namespace, step.chart, step.version_after or step.version_before or ""
    )


def _failure(exc: HelmError, release: DesiredRelease | None) -> str:
    """helm's last line of error; when that is only Go's "context deadline exceeded", what it means."""
    detail = exc.stderr.splitlines()[-1] if exc.stderr else exc.message
    if "context deadline exceeded" in detail and release is not None and release.wait:
        detail += (
            f" (its resources were not ready within the release's timeout, {release.timeout}s: "
            "look at its pods and events, or raise `timeout:`)"
        )
    return detail
