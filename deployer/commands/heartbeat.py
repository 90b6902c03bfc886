"""In CI logs (where no live table is drawn): a line every so often for each release still being
installed or upgraded, so that a long `--wait` never looks like a hung job."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType

from deployer.errors import UsageError
from deployer.execute import StepResult

ENV = "DEPLOYER_PROGRESS_SECONDS"
DEFAULT_SECONDS = 30.0


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
    def __init__(self, log: Callable[[str], None], timeouts: Mapping[str, int], every: float) -> None:
        self.log, self.timeouts, self.every = log, timeouts, every
        self.running: dict[str, StepResult] = {}
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
                self.log(f"{key}: {step.action} still running ({now - step.started:.0f}s{of})")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
