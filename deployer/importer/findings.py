"""What an import could not carry over (or carried over with a caveat), with file:line."""

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


@dataclass(frozen=True, order=True)
class Finding:
    file: str
    line: int
    what: str  # the field or construct: "releases[api].hooks"
    why: str  # what happened to it and what to do instead

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def render_text(findings: Sequence[Finding]) -> str:
    if not findings:
        return "import: everything was carried over\n"
    lines = [f"import: {len(findings)} item(s) not carried over as they were:"]
    lines += [f"  {f.where}: {f.what}: {f.why}" for f in findings]
    return "\n".join(lines) + "\n"


def render_markdown(source: str, findings: Sequence[Finding], environments: Sequence[str]) -> str:
    out = [
        "# Import report",
        "",
        f"Imported `{source}` (environments: {', '.join(environments)}).",
        "",
    ]
    if not findings:
        out += ["Everything was carried over.", ""]
        return "\n".join(out)
    out += [
        f"{len(findings)} item(s) were not carried over as they were. Review each before the first apply.",
        "",
        "| Where | What | What happened / what to do |",
        "|---|---|---|",
    ]
    out += [f"| `{f.where}` | `{_cell(f.what)}` | {_cell(f.why)} |" for f in findings]
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
