"""Running release hooks (deployer/hooks.py says which run when): each as argv, without a shell, in
the spec's directory, with the run and its release in its environment, under its own timeout (then
killed with its process group: a timed-out hook is a failed one). Its output (stdout and stderr,
merged) goes through the release's Redactor before it reaches the log or the live table.

No printing: lines go to the `log` callback (stderr), steps to `on_event` (the live table).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployer import cancel
from deployer.errors import DeployerError
from deployer.hooks import CLEANUP, PREAPPLY, Hook, due_run, masks

if TYPE_CHECKING:
    from deployer.execute import RunReport, StepResult
    from deployer.kubeconfig import KubeTarget
    from deployer.plan import Plan
    from deployer.project import Project

TAIL_LINES = 20  # of a failed hook's output, logged when it did not show its logs
DETAIL_LINES = 3  # of a failed hook's output, in the release's result
READ_CHUNK = 65536
DRAIN_SECONDS = 5.0  # reading what a finished hook's children still print, at most


@dataclass(frozen=True)
class Context:
    """What every hook of one run is told."""

    root: Path  # the spec's directory: every hook's working directory
    project: str
    environment: str
    run_id: str
    kube_context: str
    kubeconfig: str
    environ: Mapping[str, str]


@dataclass(frozen=True)
class Subject:
    """The release a hook runs for ('' everywhere for a run hook)."""

    key: str = ""
    name: str = ""
    namespace: str = ""
    chart: str = ""
    chart_version: str = ""


RUN = Subject()


def tool_kubeconfig(target: KubeTarget, environ: Mapping[str, str]) -> str:
    """KUBECONFIG naming the files deployer resolved (and gave helm): --kubeconfig, else those of
    KUBECONFIG, else ~/.kube/config; an in-cluster run's private kubeconfig."""
    from deployer.kubeconfig import kubeconfig_files

    if target.kubeconfig:
        return target.kubeconfig
    return os.pathsep.join(str(p) for p in kubeconfig_files(None, environ))


def context(project: Project, environment: str, run_id: str, target: KubeTarget) -> Context:
    return Context(
        root=project.root,
        project=project.name,
        environment=environment,
        run_id=run_id,
        kube_context=target.context,
        kubeconfig=tool_kubeconfig(target, project.environ),
        environ=dict(os.environ),
    )


def environment(ctx: Context, event: str, subject: Subject) -> dict[str, str]:
    env = dict(ctx.environ)
    env.update(
        DEPLOYER_EVENT=event,
        DEPLOYER_PROJECT=ctx.project,
        DEPLOYER_ENVIRONMENT=ctx.environment,
        DEPLOYER_RUN_ID=ctx.run_id,
        DEPLOYER_KUBE_CONTEXT=ctx.kube_context,
        KUBECONFIG=ctx.kubeconfig,
        DEPLOYER_RELEASE=subject.name,
        DEPLOYER_NAMESPACE=subject.namespace,
        DEPLOYER_CHART=subject.chart,
        DEPLOYER_CHART_VERSION=subject.chart_version,
    )
    return env


class HookFailed(DeployerError):
    """A hook exited non-zero, timed out or could not start; `detail` is what the report says."""

    def __init__(
        self, event: str, hook: Hook, why: str, tail: Sequence[str], redact: Callable[[str], str]
    ) -> None:
        last = " | ".join(tail[-DETAIL_LINES:])
        self.detail = f"{event} hook `{redact(hook.text)}` ({hook.source}) {why}" + (
            f": {last}" if last else ""
        )
        super().__init__(self.detail)


Redact = Callable[[str], str]
OnLine = Callable[[str], None]


def _nothing(_line: str) -> None:
    return None


@dataclass
class Runner:
    """Runs the hooks of one run; `log` is the progress log (stderr)."""

    ctx: Context | None  # None: hooks are off (a run with nothing declared, or a caller without them)
    log: Callable[[str], None] = lambda _message: None
    run_hooks: Sequence[tuple[str, Hook]] = ()
    redact: Redact = str  # masks the secret texts of every release of the run (for run hooks)
    failed_before: str = field(default="", init=False)  # why no release may start: preapply failed

    async def run(
        self, event: str, hook: Hook, subject: Subject, redact: Redact, on_line: OnLine = _nothing
    ) -> None:
        """Run one hook to its end; HookFailed when it fails, times out or cannot start."""
        assert self.ctx is not None
        who = f"{subject.key} {event}" if subject.key else event
        shown = redact(hook.text)
        self.log(f"{who}: running `{shown}` ({hook.source})")
        started = time.monotonic()
        tail: deque[str] = deque(maxlen=TAIL_LINES)

        def line(text: str) -> None:
            text = redact(text)
            tail.append(text)
            if hook.show_logs:
                self.log(f"{who}| {text}")
                on_line(text)

        on_line(f"`{shown}`")
        if why := cancel.reason():  # after a signal no hook starts either
            self.log(f"{who}: hook not started: {why}")
            raise HookFailed(event, hook, f"not started: {why}", [], redact)
        try:
            proc = await asyncio.create_subprocess_exec(
                *hook.command,
                cwd=self.ctx.root,
                env=environment(self.ctx, event, subject),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own process group: a timeout kills its children too
            )
        except OSError as exc:
            raise HookFailed(event, hook, f"could not start: {exc.strerror or exc}", [], redact) from None
        cancel.track_process(proc, group=True)  # a signal reaches the hook and what it started
        try:
            why = await _finish(proc, hook.timeout, line)
        finally:
            cancel.untrack_process(proc)
        elapsed = time.monotonic() - started
        if why:
            if not hook.show_logs:
                for text in tail:
                    self.log(f"{who}| {text}")
            self.log(f"{who}: hook {why} ({elapsed:.1f}s)")
            raise HookFailed(event, hook, why, list(tail), redact)
        self.log(f"{who}: hook succeeded ({elapsed:.1f}s)")

    async def around(
        self,
        events: tuple[str, str],
        hooks: Sequence[Hook],
        subject: Subject,
        *,
        redact: Redact,
        action: Callable[[], Awaitable[None]],
        on_line: Callable[[str, str], None] = lambda _event, _line: None,
    ) -> None:
        """The pre hooks, the action (only if they all succeeded), then the post hooks."""
        await self._each(events[0], hooks, subject, redact, on_line)
        await action()
        await self._each(events[1], hooks, subject, redact, on_line)

    async def _each(
        self,
        event: str,
        hooks: Sequence[Hook],
        subject: Subject,
        redact: Redact,
        on_line: Callable[[str, str], None],
    ) -> None:
        if self.ctx is None:
            return
        for hook in hooks:
            if event in hook.events:
                await self.run(event, hook, subject, redact, lambda text: on_line(event, text))

    async def before_run(self, report: RunReport, on_event: Callable[[StepResult], None]) -> None:
        """preapply: a failure stops the run before any change (failed_before says why)."""
        await self.run_event(PREAPPLY, on_event, report.hooks)

    async def after_run(self, report: RunReport, on_event: Callable[[StepResult], None]) -> None:
        """cleanup, whatever happened before."""
        await self.run_event(CLEANUP, on_event, report.hooks)

    async def run_event(
        self, event: str, on_event: Callable[[StepResult], None], results: list[StepResult]
    ) -> None:
        """Run the run hooks of `event` (preapply, cleanup) as one step appended to `results`; a
        failed preapply sets failed_before."""
        from deployer.execute import FAILED, SKIPPED, SUCCEEDED, StepResult

        hooks = [h for e, h in self.run_hooks if e == event]
        if self.ctx is None or not hooks:
            return
        if why := cancel.reason():  # after a signal no hook starts, cleanup included
            results.append(StepResult(event, "hook", status=SKIPPED, detail=f"not started: {why}"))
            on_event(results[-1])
            return
        result = StepResult(event, "hook", status="running", started=time.monotonic())
        results.append(result)
        on_event(result)

        def progress(text: str) -> None:
            result.detail = text
            on_event(result)

        try:
            for hook in hooks:
                await self.run(event, hook, RUN, self.redact, progress)
            result.status, result.detail = SUCCEEDED, ""
        except HookFailed as exc:
            result.status, result.detail = FAILED, exc.detail
        result.finished = time.monotonic()
        on_event(result)
        if event == PREAPPLY and result.status != SUCCEEDED:
            self.failed_before = "a preapply hook failed"


async def _finish(proc: asyncio.subprocess.Process, timeout: float, line: OnLine) -> str:
    """Read the process's output to `line` until it exits: '' when it succeeded, else why not."""
    reader = asyncio.ensure_future(_read_lines(proc, line))
    try:
        code = await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        _kill_group(proc)
        await proc.wait()
        reader.cancel()
        return f"timed out after {timeout:.0f}s (killed)"
    except asyncio.CancelledError:
        _kill_group(proc)
        reader.cancel()
        raise
    # A background child may keep the output open: read what is there, not until it exits.
    done, _pending = await asyncio.wait([reader], timeout=DRAIN_SECONDS)
    if not done:
        reader.cancel()
    return "" if code == 0 else f"exited with code {code}"


async def _read_lines(proc: asyncio.subprocess.Process, line: OnLine) -> None:
    assert proc.stdout is not None
    pending = b""
    while chunk := await proc.stdout.read(READ_CHUNK):
        pending += chunk
        *whole, pending = pending.split(b"\n")
        for raw in whole:
            line(raw.decode(errors="replace").rstrip("\r"))
    if pending:
        line(pending.decode(errors="replace").rstrip("\r"))


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


@dataclass(frozen=True)
class Change:
    """One release's change in destroy or rollback, with the hooks around it."""

    subject: Subject
    events: tuple[str, str]
    hooks: Sequence[Hook]
    redact: Redact
    done: str  # what its outcome line says when it succeeded
    action: Callable[[], Awaitable[None]]


def run_changes(
    runner: Runner,
    changes: Sequence[Change],
    *,
    step: Callable[[str, str, Any], bool],
    stopped: Callable[[], bool],
    out: Callable[[str], None],
) -> bool:
    """destroy's and rollback's run: preapply, each change in order with its hooks (through `step`,
    which runs a coroutine and prints its outcome line), then cleanup whatever happened; False
    when anything failed."""
    ok = True

    def run_event(event: str) -> None:
        nonlocal ok
        results: list[StepResult] = []
        asyncio.run(runner.run_event(event, _nothing_happened, results))
        for result in results:
            out(f"{result.key}\thook {result.status}" + (f": {result.detail}" if result.detail else ""))
            ok &= result.status == "succeeded"

    # A signal lets the running helm or hook end, and starts nothing more (deployer/cancel.py).
    with cancel.deferred():
        run_event(PREAPPLY)
        try:
            for change in changes:
                if stopped():  # never start another change without the lock
                    break
                if why := runner.failed_before or cancel.reason():
                    out(f"{change.subject.key}\tskipped: not started: {why}")
                    continue
                ok &= step(
                    change.subject.key,
                    change.done,
                    runner.around(
                        change.events,
                        change.hooks,
                        change.subject,
                        redact=change.redact,
                        action=change.action,
                    ),
                )
        finally:
            run_event(CLEANUP)
    return ok


def _nothing_happened(_result: StepResult) -> None:
    return None


def revision_chart(secrets: Iterable[Mapping[str, Any]], key: str, revision: int) -> tuple[str, str]:
    """The chart name and version of one stored revision of a release ("" when not found)."""
    from deployer.observed import release_chart

    for secret in secrets:
        labels = secret["metadata"].get("labels") or {}
        if (
            f"{secret['metadata']['namespace']}/{labels.get('name')}" == key
            and str(labels.get("version")) == str(revision)
            and "release" in (secret.get("data") or {})
        ):
            return release_chart(secret) or ("", "")  # a record helm did not write: unknown
    return "", ""


def for_plan(ctx: Context, plan: Plan, log: Callable[[str], None]) -> Runner:
    """The runner of an apply or sync: the plan's run hooks, masked with every release's secrets."""
    return Runner(ctx, log, due_run(plan), masks(r.redactor.redact for r in plan.releases))
