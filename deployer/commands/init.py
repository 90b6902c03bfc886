"""`deployer init CHART`: start a repository for one chart, given as a local directory,
`repo/chart` (with --repo-url) or `oci://registry/path/chart`. Writes deployer.yaml, one environment
overlay and the release's values file; refuses to overwrite anything (it checks all three first,
so it writes all or nothing)."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from deployer.errors import UsageError

NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _chart_lines(chart: str, directory: Path, args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(repositories: lines, the release's chart/version lines)."""
    if chart.startswith("oci://"):
        return [], [f"    chart: {chart}", f'    version: "{_version(chart, args)}"']
    local = Path(chart)
    if local.is_dir() or chart.startswith((".", "/")):
        if not (local / "Chart.yaml").is_file():
            raise UsageError(
                f"{chart}: no Chart.yaml there",
                hint="give a chart directory, repo/chart (with --repo-url) or oci://registry/path/chart",
            )
        relative = Path(os.path.relpath(local.resolve(), directory.resolve())).as_posix()
        return [], [f"    chart: ./{relative}" if not relative.startswith("..") else f"    chart: {relative}"]
    repo, sep, name = chart.partition("/")
    if not sep or not repo or not name or "/" in name:
        raise UsageError(
            f"'{chart}' is not a chart reference",
            hint="give a chart directory, repo/chart (with --repo-url) or oci://registry/path/chart",
        )
    if not args.repo_url:
        raise UsageError(
            f"'{chart}' names repository '{repo}': deployer.yaml needs its URL",
            hint=f"add --repo-url (e.g. --repo-url https://charts.example.com for {repo})",
        )
    repositories = ["repositories:", f"  - name: {repo}", f"    url: {args.repo_url}", ""]
    return repositories, [f"    chart: {chart}", f'    version: "{_version(chart, args)}"']


def _version(chart: str, args: argparse.Namespace) -> str:
    if not args.version:
        raise UsageError(
            f"{chart}: repository and OCI charts need a pinned version",
            hint="add --version X.Y.Z (helm search repo / helm show chart tell the latest)",
        )
    return str(args.version)


def init(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    chart: str = args.chart
    name = args.name or Path(chart.rstrip("/")).name.split(":")[0]
    env = args.env
    for what, value in (("release name", name), ("environment name", env)):
        if not NAME.match(value):
            raise UsageError(
                f"'{value}' is not a valid {what} (lowercase letters, digits and '-')",
                hint="pass --name NAME" if what == "release name" else "pass --env NAME",
            )
    repositories, chart_lines = _chart_lines(chart, directory, args)
    files = {
        directory / "deployer.yaml": "\n".join(
            [
                "# yaml-language-server: $schema=schemas/deployer.schema.json",
                *repositories,
                "defaults:",
                f"  namespace: {args.namespace}",
                "  timeout: 300",
                "  wait: true",
                "  atomic: true",
                "  # helm flags, here or on a release: createNamespace, waitForJobs, cleanupOnFail,",
                "  # historyMax, force, disableHooks, skipSchemaValidation, takeOwnership",
                "",
                "environments:",
                f"  {env}:",
                '    vars: {}    # for values files: !var NAME, or !var "text ${NAME} text"',
                "",
                "releases:",
                f"  - name: {name}",
                *chart_lines,
                "    values:",
                f"      - values/{name}.yaml",
                "",
            ]
        ),
        directory / "environments" / env / "values.yaml": (
            "# yaml-language-server: $schema=../../schemas/overlay.schema.json\n"
            f"# Values for {env} only, by release name: they override values/{name}.yaml.\n"
            f"{name}: {{}}\n"
        ),
        directory / "values" / f"{name}.yaml": (
            f"# {name}'s values in every environment (the chart's values.yaml lists what it takes).\n{{}}\n"
        ),
    }
    existing = [str(p) for p in files if p.exists()]
    if existing:
        raise UsageError(
            f"not overwriting {', '.join(existing)}",
            hint="run deployer init in an empty directory, or --dir DIR for another one",
        )
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    print(
        f"next: deployer validate && deployer values -e {env} {name}; schemas for editors: "
        "the deployer-schema pre-commit hook, or deployer schema > schemas/deployer.schema.json",
        file=sys.stderr,
    )
    return 0
