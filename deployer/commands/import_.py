"""`deployer import helmfile [PATH]`: write deployer.yaml, overlays and IMPORT-REPORT.md into the
current directory from a helmfile state file. Writes nothing if any of those files exists."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deployer.errors import UsageError
from deployer.importer.findings import REPORT_FILE, render_markdown, render_text
from deployer.importer.helm_repos import supply
from deployer.importer.layout import convert_tree, read_tree


def import_(args: argparse.Namespace) -> int:
    out_dir = Path.cwd()
    tree = read_tree(
        Path(args.path),
        environments=args.environment,
        helmfile=args.helmfile,
        helm=args.helm,
    )
    tree.findings += supply([unit.source for unit in tree.units])  # before convert_tree reads them
    output = convert_tree(tree, out_dir)
    files = {
        **output.files,
        REPORT_FILE: render_markdown(tree.shown, output.findings, output.environments),
    }
    existing = sorted(name for name in files if (out_dir / name).exists())
    if existing:
        raise UsageError(
            f"refusing to overwrite {', '.join(existing)}: nothing was written",
            hint="run the import in an empty directory, or move these files away first",
        )
    for name, text in files.items():
        target = out_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("x", encoding="utf-8") as handle:  # "x": never replace a file
            handle.write(text)
    sys.stderr.write(render_text(output.findings))
    written = ", ".join(sorted(files))
    print(f"imported {tree.shown} ({len(output.environments)} environment(s)): wrote {written}")
    return 0
