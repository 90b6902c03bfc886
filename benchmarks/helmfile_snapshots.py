#!/usr/bin/env python3
"""Helmfile's own end-to-end snapshot cases, run through `deployer import helmfile` + `deployer template`.

    .venv/bin/python benchmarks/helmfile_snapshots.py HELMFILE_CHECKOUT [--helm PATH] [--out FILE]

HELMFILE_CHECKOUT: a checkout of github.com/helmfile/helmfile (the tree of the tag matching the
pinned helmfile, v1.8.0). Each directory of test/e2e/template/helmfile/testdata/snapshot holds an
input helmfile, a config.yaml (the helmfile arguments, and whether the case needs a chart repository
or an OCI registry) and the recorded output. The case's chart repository is served on loopback
(testing/chartrepo.py) and its registry is a real OCI registry on loopback (testing/registry.py),
both holding testdata/charts, as the case's own test does; the input is prepared as that test does
($REGISTRY_PORT, ../../charts/). Then: import into a temporary directory, render with
`deployer template -e ENV [-l SELECTOR]`, and compare objects (kind/namespace/name and content) with
the recorded output (output-helm4.yaml with helm 4). The pinned helmfile renders the same prepared
input too, to tell a difference of deployer's from one of this setup's. Nothing is downloaded:
HTTP(S) goes to a dead proxy; a case that needs the network says so.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # testing/ of this repository

from corpus_common import (
    common_arguments,
    compare,
    deployer_binary,
    emit,
    first_error,
    objects,
    offline_env,
    run,
)

from testing.chartrepo import ChartRepo, package, serve
from testing.registry import Registry, oci_registry

SNAPSHOTS = Path("test/e2e/template/helmfile/testdata")
PLAIN_HTTP = "server gave HTTP response to HTTPS client"
LOOPBACK = re.compile(r"^(?:https?://|oci://)?(?:localhost|127\.0\.0\.1)[:/]")


@dataclass
class Case:
    name: str
    # same objects / differs / import failed / template failed / cannot run offline / not a render case
    verdict: str
    detail: str
    helmfile_now: str


def _helm_major(helm: Path) -> int:
    out = subprocess.run(
        [str(helm), "version", "--short"], capture_output=True, text=True, check=False
    ).stdout
    return 4 if out.lstrip("v").startswith("4") else 3


def _arg_after(args: list[str], *flags: str) -> str | None:
    for i, a in enumerate(args):
        if a in flags and i + 1 < len(args):
            return args[i + 1]
        for f in flags:
            if a.startswith(f + "="):
                return a.split("=", 1)[1]
    return None


@contextmanager
def _chart_repo(charts: Path, tmp: Path, helm: Path) -> Iterator[ChartRepo]:
    root = tmp / "chartrepo"
    for chart in sorted(p for p in charts.iterdir() if p.is_dir()):
        package(helm, chart, root)
    with serve(root) as repo:
        repo.reindex(helm)
        yield repo


def _push_all(registry: Registry, charts: Path, tmp: Path, helm: Path, env: dict[str, str]) -> None:
    for chart in sorted(p for p in charts.iterdir() if p.is_dir()):
        pkg = package(helm, chart, tmp / "oci-packages")
        subprocess.run(
            [str(helm), "push", str(pkg), f"oci://{registry.host}/myrepo", "--plain-http"],
            check=True,
            capture_output=True,
            env=env,
        )


def _remote(text: str) -> list[str]:
    """The non-loopback URLs a case needs (chart repositories, go-getter sources)."""
    urls = re.findall(r"(?:git::|s3::|gcs::)?(?:https?|oci)://[^\s\"'@]+", text)
    return sorted({u for u in urls if not LOOPBACK.match(u.split("::")[-1])})


def prepare(case: Path, data: Path, work: Path, repo_url: str, registry_port: str) -> Path:
    """The case's files in `work` laid out as in testdata/ (so that relative chart paths of nested
    helmfiles resolve as they do there), with the registry's port and the chart repository's URL."""
    for shared in ("charts", "postrenderers"):
        if (data / shared).is_dir():
            shutil.copytree(data / shared, work / shared)
    target = shutil.copytree(case, work / "snapshot" / case.name)
    for f in sorted(target.rglob("*")):
        if (
            f.is_file() and not f.name.startswith("output")  # a lock file has no suffix
        ):
            text = f.read_text()
            text = text.replace("$REGISTRY_PORT", registry_port)
            text = re.sub(r"http://localhost:\d+/?", repo_url.rstrip("/") + "/", text)
            f.write_text(text)
    return sorted(target.glob("input*"))[0]


def run_case(
    case: Path, data: Path, tmp: Path, tools: argparse.Namespace, *, repo: ChartRepo, port: str
) -> Case:
    config = yaml.safe_load((case / "config.yaml").read_text()) if (case / "config.yaml").exists() else {}
    args = [str(a) for a in (config or {}).get("helmfileArgs") or ["build"]]
    if "template" not in args:
        return Case(
            case.name, "not a render case", f"helmfile {' '.join(args)}: its output is not objects", "-"
        )
    recorded = case / (
        "output-helm4.yaml" if tools.major == 4 and (case / "output-helm4.yaml").exists() else "output.yaml"
    )
    inputs = "\n".join(
        p.read_text() for p in sorted(case.rglob("*")) if p.is_file() and not p.name.startswith("output")
    )
    remote = _remote(inputs)
    if remote:
        return Case(case.name, "cannot run offline", "needs " + ", ".join(remote), "-")
    env_name = _arg_after(args, "--environment", "-e") or "default"
    selector = _arg_after(args, "-l", "--selector")
    work = tmp / case.name
    state = prepare(case, data, work / "case", repo.url, port)
    env = offline_env(
        work / "home", extra={"DEPLOYER_HELM": str(tools.helm), "HELMFILE_DISABLE_INSECURE_FEATURES": ""}
    )
    expected = objects(recorded.read_text())
    hf = run(
        [tools.helmfile, "--helm-binary", tools.helm, "-f", state, "-e", env_name, "template"]
        + (["-l", selector] if selector else []),
        state.parent,
        env,
        tools.timeout,
    )
    now = (
        "fails: "
        + first_error("\n".join(ln for ln in hf.err.splitlines() if "exit status" not in ln.lower()))
        if hf.code
        else ("equal to recorded" if not compare(expected, objects(hf.out)) else "differs from recorded")
    )
    if PLAIN_HTTP in hf.err:
        now = "fails too: the registry is plain HTTP"
    now = _clean(now, work)
    out = work / "out"
    out.mkdir()
    imp = run(
        [tools.deployer, "import", "helmfile", state, "--helmfile", tools.helmfile, "--helm", tools.helm],
        out,
        env,
        tools.timeout,
    )
    report = (out / "IMPORT-REPORT.md").read_text() if (out / "IMPORT-REPORT.md").exists() else ""
    losses, _, noted = report.partition("\n## Notes\n")
    lines = [ln for ln in losses.splitlines() if ln.startswith("| `")]
    notes = sum(ln.startswith("| `") for ln in noted.splitlines())
    also = f"; and {notes} note(s)" if notes else ""
    reported = (
        f" (import report: {len(lines)} line(s): " + "; ".join(_row(ln) for ln in lines[:4]) + f"{also})"
        if lines
        else f" (import report: {notes} note(s), nothing lost)"
        if notes
        else ""
    )
    if imp.code != 0:
        if PLAIN_HTTP in imp.err:
            why = "helm 4 asks the loopback registry for HTTPS, which it serves as plain HTTP"
            return Case(case.name, "cannot run here", why, now)
        return Case(case.name, "import failed", _clean(first_error(imp.err), work), now)
    tpl = run(
        [tools.deployer, "template", "-e", env_name, "--no-color"] + (["-l", selector] if selector else []),
        out,
        env,
        tools.timeout,
    )
    if tpl.code != 0:
        return Case(case.name, "template failed", _clean(first_error(tpl.err), work) + reported, now)
    diffs = compare(expected, objects(tpl.out))
    if not diffs:
        return Case(
            case.name, "same objects", f"{sum(len(v) for v in expected.values())} documents{reported}", now
        )
    return Case(case.name, "differs", _clean("; ".join(diffs), work) + reported, now)


def _row(line: str) -> str:
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    return f"{cells[1]}: {cells[2]}" if len(cells) >= 3 else line


def _clean(text: str, work: Path) -> str:
    return text.replace(str(work) + "/", "").replace("|", "\\|")


def markdown(cases: list[Case], tools: argparse.Namespace) -> str:
    verdicts = sorted({c.verdict for c in cases})
    lines = [
        f"helm {tools.major} ({tools.helm.name if tools.helm.name != 'helm' else tools.helm.parent.name}),"
        f" helmfile {tools.helmfile.parent.name}: {len(cases)} cases: "
        + ", ".join(f"{v} {sum(1 for c in cases if c.verdict == v)}" for v in verdicts)
        + ".",
        "",
        "| case | verdict | what and why | helmfile now (same prepared input) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {c.name} | {c.verdict} | {c.detail} | {c.helmfile_now.replace('|', '/')} |" for c in cases]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkout", type=Path, help="a checkout of github.com/helmfile/helmfile (tag v1.8.0)")
    parser.add_argument("--case", action="append", default=[], help="run only this case (repeat)")
    common_arguments(parser)
    args = parser.parse_args(argv)
    args.deployer = deployer_binary(args.deployer)
    args.major = _helm_major(args.helm)
    data = (args.checkout / SNAPSHOTS).resolve()
    if not (data / "snapshot").is_dir():
        parser.error(f"{args.checkout} has no {SNAPSHOTS}/snapshot: give a helmfile source checkout")
    cases = sorted(
        p for p in (data / "snapshot").iterdir() if p.is_dir() and (not args.case or p.name in args.case)
    )
    with tempfile.TemporaryDirectory(prefix="helmfile-snapshots-") as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        env = offline_env(tmp / "push-home")
        repo = stack.enter_context(_chart_repo(data / "charts", tmp, args.helm))
        registry = stack.enter_context(oci_registry(tmp / "registry.log"))
        _push_all(registry, data / "charts", tmp, args.helm, env)
        port = registry.host.rsplit(":", 1)[1]
        results = [run_case(case, data, tmp, args, repo=repo, port=port) for case in cases]
    text = markdown(results, args)
    return emit(text, args.out)


if __name__ == "__main__":
    sys.exit(main())
