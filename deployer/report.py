"""A Plan rendered for a terminal or CI log (text), a pull-request comment (markdown) and machines
(json). Pure: returns strings and styled lines; printing happens in the CLI layer."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from deployer.hooks import Hook, due, due_run, listing, masks
from deployer.manifests import ResourceChange
from deployer.plan import BLOCKED, INSTALL, NOOP, PRUNE, UNINSTALL, UPGRADE, Plan, ReleasePlan

JSON_SCHEMA_VERSION = 2  # 2: `ignored` (declared noise), `crds` (CRD changes), deployerHooks (hooks)
MARKDOWN_LIMIT = 65_000  # GitHub refuses a comment over 65,536 characters
CUT = "✂️"
CLIP = 300  # characters kept of one release's reasons, chart or note in a shortened comment
CELL_CLIP = 100  # characters kept of one values-table cell in a shortened comment
MIN_CAP = 200  # the smallest cap on one table or diff before whole sections are left out
DROP_NOTE_ROOM = 100  # kept free for the "release section(s) not shown" note
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
    ) + (f" {ignored_text(plan.ignored)}." if plan.ignored else "")


def ignored_text(count: int) -> str:
    return f"{count} ignored change(s) (--no-ignore shows them)"


def _ignored_list(r: ReleasePlan, limit: int = 5) -> str:
    shown = [f"{i.key} {i.path}" + (f" ({i.where})" if i.where != "resources" else "") for i in r.ignored]
    more = f", and {len(shown) - limit} more" if len(shown) > limit else ""
    return f"{len(shown)} ignored change(s): {', '.join(shown[:limit])}{more}"


def order_text(plan: Plan) -> str:
    return "  ".join(f"{i}. {', '.join(batch)}" for i, batch in enumerate(plan.order, 1))


def text_lines(plan: Plan) -> list[Line]:
    if not plan.has_changes:
        return [
            (f"No changes: {len(plan.releases)} release(s) in {plan.environment} are up to date.", "green"),
            *((f"Ignored: {r.key}: {_ignored_list(r)}", "dim") for r in plan.releases if r.ignored),
            *((f"Note: {r.key}: {note}", "yellow") for r in plan.releases for note in r.notes),
            *((f"Note: {note}", "yellow") for note in plan.notes),
            *([(f"{ignored_text(plan.ignored)}.", "dim")] if plan.ignored else []),
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
        lines += [(t, "bold" if t.startswith("    CRDs") else "") for t in crd_lines(r)]
        if hooks := due(r):
            lines.append(("    hooks deployer runs (commands from the spec; diff runs none):", "bold"))
            lines += [(f"      {hook_text(e, h, r.redactor.redact)}", "") for e, h in hooks]
        lines += [(f"    note: {note}", "yellow") for note in r.notes]
        if r.ignored:
            lines.append((f"    {_ignored_list(r)}", "dim"))
    lines.append(("", ""))
    if run := due_run(plan):
        lines.append(("Hooks of the run (commands from the spec; diff runs none):", "bold"))
        lines += [(f"  {hook_text(e, h, _run_redact(plan))}", "") for e, h in run]
    if plan.order:
        lines.append((f"Apply order: {order_text(plan)}", ""))
    for note in plan.notes:
        lines.append((f"Note: {note}", "yellow"))
    lines.append((summary(plan), "bold"))
    return lines


CRD_MARK = {"added": "+", "changed": "~", "refused": "!"}


def crd_lines(r: ReleasePlan) -> list[str]:
    """A release's CRD changes (crds: createReplace), summarised: one line per change."""
    if not r.crds:
        return []
    lines = ["    CRDs (crds: createReplace; applied server-side before the release):"]
    for c in r.crds:
        lines.append(f"      {CRD_MARK[c.change]} CustomResourceDefinition {c.name}")
        lines += [f"          {line}" for line in c.summary]
    return lines


def hook_text(event: str, hook: Hook, redact: Any = str) -> str:
    return f"{event:<13} {redact(hook.text)}    ({hook.source})"


def _run_redact(plan: Plan) -> Any:
    return masks(r.redactor.redact for r in plan.releases)


def _hooks_json(hooks: Sequence[tuple[str, Hook]], redact: Any) -> list[dict[str, Any]]:
    return [{"event": event, **listing(hook, redact)} for event, hook in hooks]


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
        "ignored": plan.ignored,
        "deployerHooks": _hooks_json(due_run(plan), _run_redact(plan)),
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
                "crds": [{"name": c.name, "change": c.change, "summary": list(c.summary)} for c in r.crds],
                "hooks": [_resource_json(x) for x in r.hooks],
                "drift": [_resource_json(x) for x in r.drift],
                "releaseNotes": list(r.notes),
                "deployerHooks": _hooks_json(due(r), r.redactor.redact),
                "replace": r.replace,
                "ignored": [
                    {
                        "where": i.where,
                        "group": i.key.group,
                        "kind": i.key.kind,
                        "namespace": i.key.namespace,
                        "name": i.key.name,
                        "path": i.path,
                    }
                    for i in r.ignored
                ],
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


class _Section(NamedTuple):
    """One release's collapsible section, its parts computed once and cut to any cap."""

    summary: str
    summary_short: str
    rows: tuple[str, ...]  # values table rows
    rows_short: tuple[str, ...]  # the same with long cells clipped
    drift: str
    resources: str
    hooks: str
    notes: tuple[str, ...]  # the release's notes (CRD files, ...)
    crds: str = ""  # CRD changes (crds: createReplace), summarised
    commands: str = ""  # the hooks deployer runs for it (its `hooks:`), one per line

    @classmethod
    def of(cls, r: ReleasePlan) -> _Section:
        reasons = "; ".join(r.reasons)
        head = f"<details><summary><code>{r.key}</code>: {ACTION_TEXT[r.action]} "
        drift = "".join(d.diff for d in r.drift)
        table = [
            (
                _cell(v.path),
                _shown(v.before, v.change != "added"),
                _shown(v.after, v.change != "removed"),
                _cell(v.source),
            )
            for v in r.values
        ]
        return cls(
            summary=f"{head}({_cell(reasons)})</summary>\n\n",
            summary_short=f"{head}({_cell(_clip(reasons, CLIP))})</summary>\n\n",
            rows=tuple(_value_row(*cells) for cells in table),
            rows_short=tuple(_value_row(*(_clip(c, CELL_CLIP) for c in cells)) for cells in table),
            drift=drift,
            resources=_changes_text(r, r.resources),
            hooks=_changes_text(r, r.hooks),
            notes=r.notes,
            crds="".join(f"{line[6:]}\n" for line in crd_lines(r)[1:]),
            commands="".join(f"{hook_text(e, h, r.redactor.redact)}\n" for e, h in due(r)),
        )

    def render(self, cap: int | None) -> str:
        """The section; with `cap`, each table and diff is cut near `cap` characters, with a note
        saying what was cut."""
        parts = [self.summary if cap is None else self.summary_short]
        if self.rows:
            parts.append(_values_table(self.rows if cap is None else self.rows_short, cap))
        if self.drift:
            parts.append("**Drift** (live cluster vs deployed revision)\n\n")
            parts.append(_capped_diff(self.drift, cap, "Drift"))
            parts.append("\n")
        for title, body in (("Resources", self.resources), ("Hooks", self.hooks)):
            if body:
                parts.append(f"**{title}**\n\n")
                parts.append(_capped_diff(body, cap, "Diff"))
        if self.crds:
            parts.append("**CRDs** (applied server-side before the release: `crds: createReplace`)\n\n")
            parts.append(_capped_diff(self.crds, cap, "CRD summary"))
        if self.commands:
            parts.append("**Hooks deployer runs** (commands from the spec; the plan runs none)\n\n")
            parts.append(_fence(self.commands, ""))
        for note in self.notes:
            parts.append(f"\n> **Note:** {note if cap is None else _clip(note, CLIP)}\n")
        parts.append("\n</details>\n")
        return "".join(parts)


def _shown(value: Any, present: bool) -> str:
    return _cell(_value(value)) if present else ""


def _value_row(path: str, before: str, after: str, source: str) -> str:
    return f"| `{path}` | {f'`{before}`' if before else ''} | {f'`{after}`' if after else ''} | {source} |\n"


def _values_table(rows: Sequence[str], cap: int | None) -> str:
    kept = len(rows) if cap is None else _fitting(rows, cap)
    table = "**Values**\n\n| Path | Before | After | Source |\n|---|---|---|---|\n" + "".join(rows[:kept])
    if kept < len(rows):
        table += f"\n> {CUT} {len(rows) - kept} more value(s) not shown.\n"
    return table + "\n"


def _changes_text(r: ReleasePlan, changes: tuple[ResourceChange, ...]) -> str:
    """An upgrade's unified diffs; for other actions, one `+`/`-` line per resource."""
    return "".join(
        res.diff if r.action == UPGRADE else f"{'+' if res.change == 'added' else '-'} {res.key}\n"
        for res in changes
    )


def _capped_diff(body: str, cap: int | None, what: str) -> str:
    if cap is None or len(body) <= cap:
        return _fence(body)
    kept = body[:cap].rsplit("\n", 1)[0]
    omitted = body.count("\n") - kept.count("\n")
    return (
        _fence(kept + "\n") + f"\n> {CUT} {what} truncated: {omitted} more line(s) not shown. "
        "Run `deployer diff` locally for the full diff.\n"
    )


def _clip(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


def _fitting(items: Sequence[str], budget: int) -> int:
    """How many of the first items fit in `budget` characters."""
    total = 0
    for count, item in enumerate(items):
        total += len(item)
        if total > budget:
            return count
    return len(items)


def _table(plan: Plan, budget: int | None) -> str:
    """The release table; over `budget`, unchanged releases are left out first, then the last rows."""
    rows = [_table_row(r, None) for r in plan.releases]
    note = ""
    if budget is not None and sum(map(len, rows)) > budget:
        changing = [r for r in plan.releases if r.action != NOOP]
        rows = [_table_row(r, CLIP) for r in changing]
        rows = rows[: _fitting(rows, budget)]
        unchanged = len(plan.releases) - len(changing)
        detail = f" ({unchanged} of them unchanged)" if unchanged else ""
        note = f"\n> {CUT} {len(plan.releases) - len(rows)} release(s) not listed in this table{detail}.\n"
    return "| Release | Action | Chart | Changes |\n|---|---|---|---|\n" + "".join(rows) + note + "\n"


def _table_row(r: ReleasePlan, clip: int | None) -> str:
    reasons, chart = "; ".join(r.reasons), _chart(r)
    if clip is not None:
        reasons, chart = _clip(reasons, clip), _clip(chart, clip)
    return f"| `{r.key}` | {_EMOJI[r.action]} | {_cell(chart)} | {_cell(reasons)} |\n"


def _order(plan: Plan, budget: int | None) -> str:
    steps = [f"{i}. " + ", ".join(f"`{k}`" for k in b) for i, b in enumerate(plan.order, 1)]
    line = " → ".join(steps)
    if budget is not None and len(line) > budget:
        kept = _fitting([f"{step} → " for step in steps], budget)
        line = " → ".join([*steps[:kept], f"{CUT} {len(steps) - kept} more batch(es) not shown"])
    return f"**Apply order:** {line}\n\n"


def _notes(plan: Plan, budget: int | None) -> str:
    notes = [f"> {note}\n\n" for note in plan.notes]
    if budget is None or sum(map(len, notes)) <= budget:
        return "".join(notes)
    notes = [f"> {_clip(note, CLIP)}\n\n" for note in plan.notes]
    kept = _fitting(notes, budget)
    more = f"> {CUT} {len(notes) - kept} more note(s) not shown.\n\n" if kept < len(notes) else ""
    return "".join(notes[:kept]) + more


def _head(plan: Plan, budget: int | None) -> str:
    """Title, release table, apply order, notes and summary; with `budget`, at most about that long."""
    title = f"### deployer plan for `{plan.environment}`\n\n"
    if not plan.has_changes:
        found = [f"\n> **Note:** `{r.key}`: {note}\n" for r in plan.releases for note in r.notes]
        found += [f"\n> **Note:** {note}\n" for note in plan.notes]
        kept = len(found) if budget is None else _fitting(found, budget)
        more = f"\n> {CUT} {len(found) - kept} more note(s) not shown.\n" if kept < len(found) else ""
        ignored = (
            f" {ignored_text(plan.ignored).replace('--no-ignore', '`--no-ignore`')}." if plan.ignored else ""
        )
        return (
            title
            + f"No changes: {len(plan.releases)} release(s) are up to date.{ignored}\n"
            + "".join(found[:kept])
            + more
        )
    share = None if budget is None else budget // 5
    order = _order(plan, share) if plan.order else ""
    if run := due_run(plan):
        body = "".join(f"{hook_text(e, h, _run_redact(plan))}\n" for e, h in run)
        title = "**Hooks of the run** (commands from the spec; the plan runs none)\n\n"
        order += title + _fence(body, "") + "\n"
    notes = _notes(plan, share)
    tail = f"{notes}**{summary(plan)}**\n\n"
    room = None if budget is None else budget - len(title) - len(order) - len(tail)
    return title + _table(plan, None if room is None else max(0, room)) + order + tail


def markdown(plan: Plan, limit: int = MARKDOWN_LIMIT) -> str:
    """The plan as a pull-request comment, always shorter than `limit` characters. What does not
    fit is cut, largest diffs first, and every cut says so with a ✂️ note."""
    changed = [
        r
        for r in plan.releases
        if r.action != NOOP
        and (
            r.values
            or r.resources
            or r.hooks
            or r.drift
            or r.notes
            or r.crds
            or due(r)
            or r.action == BLOCKED
        )
    ]
    sections = [_Section.of(r) for r in changed]
    whole = [s.render(None) for s in sections]
    full = _head(plan, None) + "".join(whole)
    if len(full) < limit:
        return full
    footer = f"\n> {CUT} Shortened to fit a comment; run `deployer diff` locally for the full plan.\n"
    head = _head(plan, limit // 2)
    shown, dropped = _fit_sections(sections, whole, limit - len(head) - len(footer) - DROP_NOTE_ROOM)
    if dropped:
        shown.append(f"\n> {CUT} {dropped} release section(s) not shown.\n")
    out = head + "".join(shown) + footer
    if len(out) >= limit:  # only for a limit too small to hold the head (a few hundred characters)
        out = f"### deployer plan for `{plan.environment}`\n\n**{summary(plan)}**\n{footer}"
    return out if len(out) < limit else out[: max(0, limit - 1)]


def _fit_sections(sections: Sequence[_Section], whole: list[str], room: int) -> tuple[list[str], int]:
    """The sections (`whole` as rendered uncut) that fit in `room`: cap the largest tables and
    diffs, shrinking the cap until everything fits or the cap reaches MIN_CAP; then leave out the
    last sections."""
    if room <= 0:
        return [], len(sections)
    shown = whole
    cap = max(MIN_CAP, min(room, max(map(len, whole), default=0)))  # no one part is worth more
    while sum(map(len, shown)) > room and cap > MIN_CAP:
        cap = max(MIN_CAP, int(cap * 0.7))
        shown = [s.render(cap) for s in sections]
    kept = _fitting(shown, room)
    return shown[:kept], len(shown) - kept
