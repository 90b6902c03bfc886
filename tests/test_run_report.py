"""The apply report of a cancelled run, in each output: the verdict names the signal, and each
release says what it was left as (deployer/run_report.py)."""

from __future__ import annotations

import json

from deployer.execute import RunReport, StepResult
from deployer.run_report import json_text, markdown, text


def cancelled() -> RunReport:
    left = "shop/api is not installed: the next `deployer apply` installs it"
    return RunReport(
        "prod",
        "20261203-101500-ab12",
        steps=[
            StepResult("shop/api", "install", "failed", f"cancelled by SIGTERM: context canceled; {left}"),
            StepResult("shop/worker", "install", "skipped", "not started: cancelled by SIGTERM"),
        ],
        hooks=[StepResult("cleanup", "hook", "skipped", "not started: cancelled by SIGTERM")],
        cancelled_by="SIGTERM",
    )


def test_text_report_of_a_cancelled_run() -> None:
    lines = text(cancelled()).splitlines()

    assert lines[0].startswith(
        "shop/api\tinstall\tfailed\tcancelled by SIGTERM: context canceled; shop/api is"
    )
    assert lines[1] == "shop/worker\tinstall\tskipped\tnot started: cancelled by SIGTERM"
    assert lines[2] == "cleanup\thook\tskipped\tnot started: cancelled by SIGTERM"
    assert lines[3] == "Apply cancelled by SIGTERM: 1 failed, 1 skipped. Run 20261203-101500-ab12."


def test_markdown_report_of_a_cancelled_run() -> None:
    out = markdown(cancelled())

    assert "deployer apply: prod" in out.splitlines()[0]
    assert "| `shop/api` | install | failed | cancelled by SIGTERM: context canceled; shop/api is not" in out
    assert "| `shop/worker` | install | skipped | not started: cancelled by SIGTERM |" in out
    assert (
        out.splitlines()[-1] == "Apply cancelled by SIGTERM: 1 failed, 1 skipped. Run 20261203-101500-ab12."
    )


def test_json_report_names_the_signal_only_when_cancelled() -> None:
    doc = json.loads(json_text(cancelled()))

    assert doc["cancelledBy"] == "SIGTERM"
    assert doc["ok"] is False
    assert [(r["key"], r["status"]) for r in doc["releases"]] == [
        ("shop/api", "failed"),
        ("shop/worker", "skipped"),
    ]
    assert json.loads(json_text(RunReport("prod", "r1")))["cancelledBy"] is None
