"""Printing plans: colour through rich on a terminal, plain and stable text everywhere else."""

from __future__ import annotations

import os
import sys

from deployer.plan import Plan
from deployer.report import markdown, text, text_lines, to_json


def use_color() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def emit_plan(plan: Plan, fmt: str) -> None:
    if fmt == "json":
        sys.stdout.write(to_json(plan))
    elif fmt == "markdown":
        sys.stdout.write(markdown(plan))
    elif use_color():
        from rich.console import Console
        from rich.text import Text

        console = Console(highlight=False, soft_wrap=True)
        for line, style in text_lines(plan):
            console.print(Text(line, style=style or ""))
    else:
        sys.stdout.write(text(plan))
