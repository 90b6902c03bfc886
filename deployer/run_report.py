"""A run's report (what apply/sync did) as text (CI logs), markdown (a job summary or pull-request
comment) and JSON. Pure: returns strings; the verb prints them.

A failed release carries its diagnosis (deployer/rollout.py): the objects that were not ready, the
Warning events about them and the last log lines of containers that failed, masked already.
"""

from __future__ import annotations

import json
from typing import Any

from deployer.execute import RunReport, StepResult
from deployer.rollout import Diagnosis

RUN_SCHEMA_VERSION = 1  # fields are only added within a version (docs/diff.md)


def verdict(report: RunReport) -> str:
    counts: dict[str, int] = {}
    for s in report.steps:
        counts[s.status] = counts.get(s.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    text = "Apply complete" if report.ok else "Apply FAILED"
    if report.cancelled_by:  # the releases say what each was left as
        text = f"Apply cancelled by {report.cancelled_by}"
    if report.rolled_back:
        text += " (changes of this run rolled back)"
    return f"{text}: {summary}. Run {report.run_id}."


def _with_hooks(report: RunReport) -> list[StepResult]:
    """The run's own hooks (preapply first, cleanup last) around its releases."""
    hooks = list(getattr(report, "hooks", []))
    return [
        *(h for h in hooks if h.key == "preapply"),
        *report.steps,
        *(h for h in hooks if h.key != "preapply"),
    ]


def text(report: RunReport) -> str:
    lines = []
    for s in _with_hooks(report):
        line = f"{s.key}\t{s.action}\t{s.status}"
        if s.detail:
            line += f"\t{s.detail}"
        if s.restored:
            line += f"\t{s.restored}"
        lines.append(line)
        if s.diagnosis:
            lines += [f"    {x}" for x in s.diagnosis.lines()]
    lines.append(verdict(report))
    return "\n".join(lines) + "\n"


def markdown(report: RunReport) -> str:
    icon = "✅" if report.ok else "⏹️" if report.cancelled_by else "❌"
    out = [f"### {icon} deployer apply: {report.environment}", ""]
    if report.steps:
        out += ["| Release | Action | Status | Detail |", "|---|---|---|---|"]
        for s in report.steps:
            detail = "; ".join(x for x in (s.detail, s.restored) if x)
            out.append(f"| `{s.key}` | {s.action} | {s.status} | {_cell(detail)} |")
        out.append("")
    for s in report.steps:
        if s.diagnosis:
            out += [f"<details open><summary>Why <code>{s.key}</code> failed</summary>", ""]
            out += ["```text", *(_fence_safe(x) for x in s.diagnosis.lines()), "```", "", "</details>", ""]
    out.append(verdict(report))
    return "\n".join(out) + "\n"


def json_text(report: RunReport) -> str:
    doc = {
        "schemaVersion": RUN_SCHEMA_VERSION,
        "environment": report.environment,
        "runId": report.run_id,
        "ok": report.ok,
        "rolledBack": report.rolled_back,
        "cancelledBy": report.cancelled_by or None,  # SIGINT or SIGTERM: a cancelled run
        "releases": [_step(s) for s in report.steps],
        "runHooks": [
            {"event": h.key, "status": h.status, "detail": h.detail, "seconds": round(h.elapsed, 1)}
            for h in getattr(report, "hooks", [])
        ],
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def _step(s: StepResult) -> dict[str, Any]:
    return {
        "key": s.key,
        "action": s.action,
        "status": s.status,
        "detail": s.detail,
        "revisionBefore": s.revision_before,
        "restored": s.restored,
        "seconds": round(s.elapsed, 1),
        "diagnosis": _diagnosis(s.diagnosis) if s.diagnosis else None,
    }


def _diagnosis(d: Diagnosis) -> dict[str, Any]:
    return {
        "notReady": [
            {
                "kind": o.kind,
                "namespace": o.namespace,
                "name": o.name,
                "reason": o.reason,
                "message": o.message,
            }
            for o in d.objects
        ],
        "events": [
            {
                "object": e.object,
                "reason": e.reason,
                "message": e.message,
                "count": e.count,
                "others": e.others,
            }
            for e in d.events
        ],
        "logs": [
            {
                "pod": t.pod,
                "container": t.container,
                "previous": t.previous,
                "lines": list(t.lines),
                "error": t.error,
            }
            for t in d.logs
        ],
        "unreadable": d.unreadable,
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _fence_safe(line: str) -> str:
    return line.replace("```", "`\u200b``")
