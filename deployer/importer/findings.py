"""What an import could not carry over (a loss), or carried over with something worth knowing (a note:
advice about the source file, or the next step such as `deployer lock`), each with file:line. Only
losses make an import incomplete; notes are listed apart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

REPORT_FILE = "IMPORT-REPORT.md"
WHY_NONE = "no deployer equivalent; not carried over"
WHY_HOOKS = (
    "deployer has no helmfile hooks (the import never runs them); not carried over: use helm hooks in "
    "the chart, or run the command in your pipeline before or after deployer apply"
)
WHY_DEPENDENCIES = (
    "chartify dependencies are not supported; not carried over: add them to the chart's Chart.yaml "
    "dependencies: (helm dependency build), or deploy each as its own release listed in needs:"
)


class Kept(str):
    """The why of a note: the thing was carried over as it was, and this is advice or a next step. A
    Finding whose why is Kept is a note, wherever it was made (a callback that passes the text on keeps
    its type)."""

    __slots__ = ()


@dataclass(frozen=True, order=True)
class Finding:
    file: str
    line: int
    what: str  # the field or construct: "releases[api].hooks"
    why: str  # what happened to it and what to do instead
    note: bool = False  # carried over as it was: advice or a next step, nothing lost

    def __post_init__(self) -> None:
        if isinstance(self.why, Kept) and not self.note:
            object.__setattr__(self, "note", True)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def losses_and_notes(findings: Sequence[Finding]) -> tuple[list[Finding], list[Finding]]:
    ordered = sorted(findings)
    return [f for f in ordered if not f.note], [f for f in ordered if f.note]


def render_text(findings: Sequence[Finding]) -> str:
    losses, notes = losses_and_notes(findings)
    if not losses:
        lines = ["import: everything was carried over"]
    else:
        lines = [f"import: {len(losses)} item(s) not carried over as they were:"]
        lines += [f"  {f.where}: {f.what}: {f.why}" for f in losses]
    if notes:
        lines.append(f"import: {len(notes)} note(s) (carried over as it was: advice, or a next step):")
        lines += [f"  {f.where}: {f.what}: {f.why}" for f in notes]
    return "\n".join(lines) + "\n"


def render_markdown(source: str, findings: Sequence[Finding], environments: Sequence[str]) -> str:
    losses, notes = losses_and_notes(findings)
    out = [
        "# Import report",
        "",
        f"Imported `{source}` (environments: {', '.join(environments)}).",
        "",
    ]
    if not losses:
        out += ["Everything was carried over.", ""]
    else:
        out += [
            f"{len(losses)} item(s) were not carried over as they were. Review each before the first apply.",
            "",
            *_table(losses),
            "",
        ]
    if notes:
        out += [
            "## Notes",
            "",
            "Carried over as they were; worth knowing before the first apply.",
            "",
            *_table(notes),
            "",
        ]
    return "\n".join(out)


def _table(findings: Sequence[Finding]) -> list[str]:
    return [
        "| Where | What | What happened / what to do |",
        "|---|---|---|",
        *(f"| `{f.where}` | `{_cell(f.what)}` | {_cell(f.why)} |" for f in findings),
    ]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
