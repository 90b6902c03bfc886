"""A Plan rendered for a terminal or CI log (text), a pull-request comment (markdown) and machines
(json). Pure: returns strings and styled lines; printing happens in the CLI layer."""

from __future__ import annotations

import json
import re
from typing import Any

from deployer.manifests import ResourceChange
from deployer.plan import BLOCKED, INSTALL, NOOP, PRUNE, UNINSTALL, UPGRADE, Plan, ReleasePlan

JSON_SCHEMA_VERSION = 1
MARKDOWN_LIMIT = 65_000
SYMBOL = {INSTALL: "+", UPGRADE: "~", UNINSTALL: "-", PRUNE: "-", BLOCKED: "!", NOOP: "="}
STYLE = {
    INSTALL: "green",
    UPGRADE: "yellow",
    UNINSTALL: "red",
    PRUNE: "red",
    BLOCKED: "bold red",
    NOOP: "dim",
}
ACTION_TEXT = {
    INSTALL: "install",
    UPGRADE: "upgrade",
    UNINSTALL: "uninstall",
    PRUNE: "prune",
    BLOCKED: "blocked",
    NOOP: "no change",
}

Line = tuple[str, str]  # (text, rich style or "")


def _value(v: Any) -> str:
    return json.dumps(v, sort_keys=True)


def _chart(r: ReleasePlan) -> str:
    if r.version_before and r.version_after and r.version_before != r.version_after:
        return f"{r.chart} {r.version_before} -> {r.version_after}"
    return f"{r.chart} {r.version_after or r.version_before or ''}".strip()


def summary(plan: Plan) -> str:
    c = plan.counts()
    return (
        f"Plan: {c[INSTALL]} to install, {c[UPGRADE]} to upgrade, {c[UNINSTALL]} to uninstall, "
        f"{c[PRUNE]} to prune, {c[BLOCKED]} blocked, {c[NOOP]} unchanged."
    )


def order_text(plan: Plan) -> str:
    return "  ".join(f"{i}. {', '.join(batch)}" for i, batch in enumerate(plan.order, 1))


def text_lines(plan: Plan) -> list[Line]:
    if not plan.has_changes:
        return [
            (f"No changes: {len(plan.releases)} release(s) in {plan.environment} are up to date.", "green"),
            *((f"Note: {r.key}: {note}", "yellow") for r in plan.releases for note in r.notes),
        ]
    lines: list[Line] = []
    for r in plan.releases:
        style = STYLE[r.action]
        head = f"{SYMBOL[r.action]} {r.key}  {ACTION_TEXT[r.action]}  {_chart(r)}"
        if r.action != NOOP:
            head += f"  ({'; '.join(r.reasons)})"
        lines.append((head, style))
        if r.values:
            lines.append(("    values:", "bold"))
            for v in r.values:
                mark = {"added": "+", "removed": "-", "changed": "~"}[v.change]
                if v.change == "changed":
                    body = f"{v.path}: {_value(v.before)} -> {_value(v.after)}"
                elif v.change == "added":
                    body = f"{v.path}: {_value(v.after)}"
                else:
                    body = f"{v.path}: {_value(v.before)}"
                src = f"    ({v.source})" if v.source else ""
                lines.append((f"      {mark} {body}{src}", ""))
        if r.drift:
            lines.append(("    drift (live cluster vs deployed revision):", "bold"))
            for res in r.drift:
                lines.append((f"      ! {res.key} {res.change}", "bold"))
                for line in res.diff.splitlines():
                    if line.startswith(("---", "+++")):
                        continue
                    lines.append((f"        {line}", _diff_style(line)))
        lines += _changes_lines("resources", r.resources, detailed=r.action == UPGRADE)
        lines += _changes_lines(
            "hooks (run by helm, not kept as release resources)", r.hooks, detailed=r.action == UPGRADE
        )
        lines += [(f"    note: {note}", "yellow") for note in r.notes]
    lines.append(("", ""))
    if plan.order:
        lines.append((f"Apply order: {order_text(plan)}", ""))
    for note in plan.notes:
        lines.append((f"Note: {note}", "yellow"))
    lines.append((summary(plan), "bold"))
    return lines


def _changes_lines(title: str, changes: tuple[ResourceChange, ...], *, detailed: bool) -> list[Line]:
    if not changes:
        return []
    lines: list[Line] = [(f"    {title}:", "bold")]
    for res in changes:
        mark = {"added": "+", "removed": "-", "changed": "~"}[res.change]
        lines.append((f"      {mark} {res.key}", "bold"))
        if detailed:
            for line in res.diff.splitlines():
                if line.startswith(("---", "+++")):
                    continue
                lines.append((f"        {line}", _diff_style(line)))
    return lines


def _diff_style(line: str) -> str:
    if line.startswith("@@"):
        return "cyan"
    return "green" if line.startswith("+") else "red" if line.startswith("-") else ""


def text(plan: Plan) -> str:
    return "".join(f"{t}\n" for t, _ in text_lines(plan))


def _resource_json(change: ResourceChange) -> dict[str, str]:
    key = change.key
    return {
        "group": key.group,
        "kind": key.kind,
        "namespace": key.namespace,
        "name": key.name,
        "change": change.change,
        "diff": change.diff,
    }


def to_json(plan: Plan) -> str:
    doc = {
        "schemaVersion": JSON_SCHEMA_VERSION,
        "environment": plan.environment,
        "hasChanges": plan.has_changes,
        "summary": plan.counts(),
        "order": [list(b) for b in plan.order],
        "notes": list(plan.notes),
        "releases": [
            {
                "key": r.key,
                "name": r.name,
                "namespace": r.namespace,
                "action": r.action,
                "reasons": list(r.reasons),
                "chart": r.chart,
                "versionBefore": r.version_before,
                "versionAfter": r.version_after,
                "revision": r.revision,
                "needs": list(r.needs),
                "values": [
                    {
                        "path": v.path,
                        "change": v.change,
                        "before": v.before,
                        "after": v.after,
                        "source": v.source,
                    }
                    for v in r.values
                ],
                "resources": [_resource_json(x) for x in r.resources],
                "hooks": [_resource_json(x) for x in r.hooks],
                "drift": [_resource_json(x) for x in r.drift],
                "releaseNotes": list(r.notes),
                "replace": r.replace,
            }
            for r in plan.releases
        ],
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


_EMOJI = {
    INSTALL: "🆕 install",
    UPGRADE: "🔄 upgrade",
    UNINSTALL: "🗑️ uninstall",
    PRUNE: "🧹 prune",
    BLOCKED: "⛔ blocked",
    NOOP: "✅ no change",
}


def _fence(body: str, lang: str = "diff") -> str:
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{body.rstrip()}\n{fence}\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _changes_block(r: ReleasePlan, changes: tuple[ResourceChange, ...], diff_limit: int | None) -> str:
    body = "".join(
        res.diff if r.action == UPGRADE else f"{'+' if res.change == 'added' else '-'} {res.key}\n"
        for res in changes
    )
    if diff_limit is None or len(body) <= diff_limit:
        return _fence(body)
    kept = body[:diff_limit].rsplit("\n", 1)[0]
    omitted = body.count("\n") - kept.count("\n")
    return _fence(kept + "\n") + (
        f"\n> ✂️ Diff truncated: {omitted} more line(s) not shown. "
        "Run `deployer diff` locally for the full diff.\n"
    )


def _release_section(r: ReleasePlan, diff_limit: int | None) -> str:
    parts = [
        f"<details><summary><code>{r.key}</code>: {ACTION_TEXT[r.action]} ({_cell('; '.join(r.reasons))})"
        f"</summary>\n\n"
    ]
    if r.values:
        parts.append("**Values**\n\n| Path | Before | After | Source |\n|---|---|---|---|\n")
        for v in r.values:
            before = f"`{_cell(_value(v.before))}`" if v.change != "added" else ""
            after = f"`{_cell(_value(v.after))}`" if v.change != "removed" else ""
            parts.append(f"| `{_cell(v.path)}` | {before} | {after} | {_cell(v.source)} |\n")
        parts.append("\n")
    if r.drift:
        parts.append("**Drift** (live cluster vs deployed revision)\n\n")
        parts.append(_fence("".join(d.diff for d in r.drift)))
        parts.append("\n")
    for title, changes in (("Resources", r.resources), ("Hooks", r.hooks)):
        if changes:
            parts.append(f"**{title}**\n\n")
            parts.append(_changes_block(r, changes, diff_limit))
    for note in r.notes:
        parts.append(f"\n> **Note:** {note}\n")
    parts.append("\n</details>\n")
    return "".join(parts)


def markdown(plan: Plan, limit: int = MARKDOWN_LIMIT) -> str:
    head = [f"### deployer plan for `{plan.environment}`\n\n"]
    if not plan.has_changes:
        head.append(f"No changes: {len(plan.releases)} release(s) are up to date.\n")
        head += [f"\n> **Note:** `{r.key}`: {note}\n" for r in plan.releases for note in r.notes]
        return "".join(head)
    head.append("| Release | Action | Chart | Changes |\n|---|---|---|---|\n")
    for r in plan.releases:
        head.append(
            f"| `{r.key}` | {_EMOJI[r.action]} | {_cell(_chart(r))} | {_cell('; '.join(r.reasons))} |\n"
        )
    head.append("\n")
    if plan.order:
        steps = " → ".join(f"{i}. " + ", ".join(f"`{k}`" for k in b) for i, b in enumerate(plan.order, 1))
        head.append(f"**Apply order:** {steps}\n\n")
    for note in plan.notes:
        head.append(f"> {note}\n\n")
    head.append(f"**{summary(plan)}**\n\n")
    changed = [
        r
        for r in plan.releases
        if r.action != NOOP and (r.values or r.resources or r.hooks or r.notes or r.action == BLOCKED)
    ]
    sections = [_release_section(r, None) for r in changed]
    total = len("".join(head)) + sum(map(len, sections))
    limit_per_diff: int | None = None
    # Too long for a comment: cap the largest diffs, shrinking the cap until everything fits.
    while total > limit:
        biggest = max(len(s) for s in sections)
        limit_per_diff = max(200, int(biggest * 0.7) if limit_per_diff is None else int(limit_per_diff * 0.7))
        sections = [_release_section(r, limit_per_diff) for r in changed]
        total = len("".join(head)) + sum(map(len, sections))
        if limit_per_diff == 200:
            break
    return "".join(head) + "".join(sections)
