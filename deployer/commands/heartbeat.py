"""In CI logs (where no live table is drawn): a line every so often for each release still being
installed or upgraded, so that a long `--wait` never looks like a hung job.

With a rollout watch (deployer/rollout.py), the line says what the release waits for, and is
printed when that changes; while nothing changes, a bare line only every QUIET_SECONDS (so that a
CI system's no-output watchdog does not end the job)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType

from deployer.errors import UsageError
from deployer.execute import StepResult

ENV = "DEPLOYER_PROGRESS_SECONDS"
DEFAULT_SECONDS = 30.0
QUIET_SECONDS = 300.0


def interval(environ: Mapping[str, str]) -> float:
    text = environ.get(ENV, "")
    if not text:
        return DEFAULT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise UsageError(
            f"{ENV}={text!r} is not a number of seconds",
            hint=f"e.g. {ENV}=60 (default {DEFAULT_SECONDS:.0f})",
        )
    return seconds


class Heartbeat:
    def __init__(
        self,
        log: Callable[[str], None],
        timeouts: Mapping[str, int],
        every: float,
        waiting: Callable[[str], str] | None = None,
    ) -> None:
        self.log, self.timeouts, self.every, self.waiting = log, timeouts, every, waiting
        self.running: dict[str, StepResult] = {}
        self._said: dict[str, tuple[str, float]] = {}  # release -> (what it waited for, when said)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="deployer-heartbeat", daemon=True)

    def on_event(self, step: StepResult) -> None:
        if step.status == "running":
            self.running[step.key] = step
        else:
            self.running.pop(step.key, None)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            now = time.monotonic()
            for key, step in sorted(dict(self.running).items()):
                timeout = self.timeouts.get(key)
                of = f" of its {timeout}s timeout" if timeout else ""
                line = f"{key}: {step.action} still running ({now - step.started:.0f}s{of})"
                if self.waiting is None:
                    self.log(line)
                    continue
                what = self.waiting(key)
                said = self._said.get(key)
                if said is not None and said[0] == what and now - said[1] < QUIET_SECONDS:
                    continue
                self._said[key] = (what, now)
                self.log(
                    f"{line}: waiting for {what}" if what and (said is None or said[0] != what) else line
                )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
