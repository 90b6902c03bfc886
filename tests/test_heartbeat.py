"""The 'still running' lines of apply in CI logs (tests/cluster/test_apply.py sees them in a real run)."""

from __future__ import annotations

import threading
import time

import pytest

from deployer.commands.heartbeat import DEFAULT_SECONDS, Heartbeat, interval
from deployer.errors import UsageError
from deployer.execute import StepResult


def test_a_running_step_is_reported_and_a_finished_one_is_not() -> None:
    lines: list[str] = []
    twice = threading.Event()

    def log(line: str) -> None:
        lines.append(line)
        if sum(x.startswith("shop/api:") for x in lines) >= 2:
            twice.set()

    now = time.monotonic()
    api = StepResult("shop/api", "upgrade", status="running", started=now)
    worker = StepResult("shop/worker", "install", status="running", started=now)
    beat = Heartbeat(log, {"shop/api": 300, "shop/worker": 120}, every=0.01)
    beat.on_event(api)
    beat.on_event(worker)
    worker.status = "succeeded"
    beat.on_event(worker)
    with beat:
        assert twice.wait(60)  # a generous deadline: only that lines come, never how fast
    assert lines[0].startswith("shop/api: upgrade still running (")
    assert lines[0].endswith("s of its 300s timeout)")
    assert not [x for x in lines if x.startswith("shop/worker")]


@pytest.mark.parametrize("text", ["abc", "0", "-5", "nan", "inf s"])
def test_a_bad_interval_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError) as raised:
        interval({"DEPLOYER_PROGRESS_SECONDS": text})
    assert raised.value.render() == (
        f"error: DEPLOYER_PROGRESS_SECONDS={text!r} is not a number of seconds\n"
        "  hint: e.g. DEPLOYER_PROGRESS_SECONDS=60 (default 30)"
    )


def test_the_interval_defaults_to_thirty_seconds() -> None:
    assert interval({}) == DEFAULT_SECONDS == 30.0
    assert interval({"DEPLOYER_PROGRESS_SECONDS": "2.5"}) == 2.5


def test_what_a_release_waits_for_is_said_once_per_change() -> None:
    lines: list[str] = []
    answers = iter(
        ["apps/Deployment api: 0/1 ready"] * 5 + ["pod api-1: container app: ImagePullBackOff"] * 50
    )
    seen = threading.Event()

    def waiting(key: str) -> str:
        assert key == "shop/api"
        try:
            return next(answers)
        except StopIteration:
            seen.set()
            return "pod api-1: container app: ImagePullBackOff"

    step = StepResult("shop/api", "install", status="running", started=time.monotonic())
    beat = Heartbeat(lines.append, {"shop/api": 300}, every=0.001, waiting=waiting)
    beat.on_event(step)
    with beat:
        assert seen.wait(60)
    assert len(lines) == 2, lines  # 55 intervals, two changes
    assert lines[0].startswith("shop/api: install still running (")
    assert lines[0].endswith("s of its 300s timeout): waiting for apps/Deployment api: 0/1 ready")
    assert lines[1].endswith(": waiting for pod api-1: container app: ImagePullBackOff")
