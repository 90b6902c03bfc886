"""On a terminal: a live table of the run (release, action, state, elapsed), drawn with rich on
stderr. Elsewhere (CI logs) the plain timestamped lines of `progress()` are used instead."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from deployer.execute import StepResult

STATE_STYLE = {
    "running": "yellow",
    "succeeded": "green",
    "failed": "bold red",
    "skipped": "dim",
    "rolled back": "magenta",
    "pending": "dim",
}


def wanted() -> bool:
    return sys.stderr.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


class StepTable:
    def __init__(self, waiting: Callable[[str], str] | None = None) -> None:
        self.steps: dict[str, StepResult] = {}
        self.waiting = waiting  # what a running release waits for (deployer/rollout.py)

    def on_event(self, step: StepResult) -> None:
        self.steps[step.key] = step

    def __rich__(self) -> Any:
        from rich.table import Table

        table = Table(box=None, header_style="bold")
        for column in ("RELEASE", "ACTION", "STATE", "ELAPSED"):
            table.add_column(column)
        now = time.monotonic()
        for key in sorted(self.steps):
            step = self.steps[key]
            end = step.finished or (now if step.started else 0.0)
            elapsed = f"{end - step.started:5.1f}s" if step.started else ""
            state = (
                step.status
                + (f": {step.detail}" if step.detail else "")
                + (f" ({step.restored})" if step.restored else "")
            )
            if step.status == "running" and self.waiting is not None and (what := self.waiting(key)):
                state += f": waiting for {what}"
            table.add_row(key, step.action, f"[{STATE_STYLE.get(step.status, '')}]{state}", elapsed)
        return table


@contextmanager
def live_table(waiting: Callable[[str], str] | None = None) -> Iterator[StepTable]:
    from rich.console import Console
    from rich.live import Live

    table = StepTable(waiting)
    with Live(table, console=Console(stderr=True), refresh_per_second=4, transient=False):
        yield table
