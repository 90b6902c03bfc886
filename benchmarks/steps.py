"""The runs: each size, operation and tool, measured (and the helm floor beside them)."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import specs
from common import BENCH, CONCURRENCY, DEPLOYER, ENV, HELMFILE, KUBE_VERSION, OBSERVED, TOOLS, log
from measure import Sample, run_measured
from tooling import Cluster, Tools, tool_env

# ---------------------------------------------------------------------------------------------------
# Runs


@dataclass
class Record:
    tool: str
    op: str
    n: int
    rep: int
    warmup: bool
    sample: Sample
    command: list[str]
    api_requests: int | None = None
    observed: int | None = None
    expected_exit: tuple[int, ...] = (0,)
    stderr_file: str = ""
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)  # os.getloadavg() just before the run

    @property
    def ok(self) -> bool:
        return bool(self.sample.returncode in self.expected_exit)


@dataclass
class Bench:
    args: argparse.Namespace
    tools: Tools
    kubeconfig: str
    work: Path
    cluster_: Cluster | None
    records: list[Record] = field(default_factory=list)
    kube_version: str = "?"
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    counter: int = 0
    nodes: int = 0
    included: list[str] = field(default_factory=list)  # earlier runs added with --include

    @property
    def cluster(self) -> Cluster:
        assert self.cluster_ is not None
        return self.cluster_

    def command(self, tool: str, op: str) -> list[str]:
        if tool == DEPLOYER:
            exe = str(self.tools.deployer)
            if op == "version":
                return [exe, "--version"]
            if op == "template":
                return [exe, "template", "-e", ENV, "--concurrency", CONCURRENCY]
            if op.startswith("diff"):
                return [exe, "diff", "-e", ENV, "--concurrency", CONCURRENCY, "--detailed-exitcode"]
            return [exe, "apply", "-e", ENV, "--yes", "--concurrency", CONCURRENCY]
        exe = str(self.tools.helmfile)
        if op == "version":
            return [exe, "--version"]
        base = [exe, "--helm-binary", str(self.tools.helm), "-e", ENV, "-f", "helmfile.yaml.gotmpl"]
        if op == "template":
            return [*base, "template", "--concurrency", CONCURRENCY]
        if op.startswith("diff"):
            return [*base, "diff", "--concurrency", CONCURRENCY, "--detailed-exitcode"]
        verb = "apply" if self.tools.helm_plugins else "sync"
        return [*base, verb, "--concurrency", CONCURRENCY]

    def run(
        self,
        tool: str,
        op: str,
        n: int,
        rep: int,
        *,
        warmup: bool,
        cwd: Path,
        prefix: str,
        expected_exit: tuple[int, ...] = (0,),
        cache_dir: Path | None = None,
        argv: list[str] | None = None,
        quiet: bool = False,
    ) -> Record:
        argv = argv or self.command(tool, op)
        env = tool_env(self.tools, tool, self.work, prefix, self.kubeconfig)
        if cache_dir is not None:
            env["DEPLOYER_CACHE_DIR"] = str(cache_dir)
        self.counter += 1
        logs = self.work / "logs"
        logs.mkdir(exist_ok=True)
        stem = f"{self.counter:04d}-{tool}-{op}-n{n}-r{rep}"
        load = os.getloadavg()
        sample = run_measured(
            argv, cwd=cwd, env=env, stdout=logs / f"{stem}.out", stderr=logs / f"{stem}.err"
        )
        record = Record(tool, op, n, rep, warmup, sample, argv, expected_exit=expected_exit, load=load)
        record.stderr_file = str(logs / f"{stem}.err")
        err = (logs / f"{stem}.err").read_text(errors="replace")
        if tool == DEPLOYER and (m := OBSERVED.search(err)):
            record.observed, record.api_requests = int(m.group(1)), int(m.group(2))
        if tool == DEPLOYER and (m := KUBE_VERSION.search(err)):
            self.kube_version = m.group(1)
        self.records.append(record)
        if quiet and record.ok:
            return record
        tag = " (warm-up)" if warmup else ""
        status = "" if record.ok else f"  UNEXPECTED EXIT {sample.returncode} (see {record.stderr_file})"
        api = f", {record.api_requests} API request(s)" if record.api_requests is not None else ""
        log(
            f"N={n:<3} {op:<14} {tool:<8} rep {rep}{tag}: {sample.wall:7.3f}s wall, {sample.cpu:7.3f}s CPU, "
            f"tree RSS {sample.tree_rss / 2**20:6.0f} MiB{api}, load {load[0]:.1f}{status}"
        )
        if not record.ok:
            tail = "\n".join(err.strip().splitlines()[-15:])
            self.failures.append(
                f"N={n} {op} {tool} rep {rep}: exit {sample.returncode}, expected {expected_exit}; "
                f"`{' '.join(argv)}`; stderr ends with:\n\n```\n{tail}\n```"
            )
        return record


def repeats(args: argparse.Namespace, n: int) -> int:
    """Timed runs of template, diff and apply-with-no-change at this N."""
    return int(min(args.repeat, args.large_repeat) if n >= args.large else args.repeat)


def order(rep: int) -> tuple[str, str]:
    """Alternate which tool runs first, run by run."""
    return (DEPLOYER, HELMFILE) if rep % 2 == 0 else (HELMFILE, DEPLOYER)


def tools_for(bench: Bench, op: str, rep: int) -> tuple[str, ...]:
    """The tools that run `op`, in this run's order (--helmfile-ops can leave helmfile out)."""
    return tuple(t for t in order(rep) if t == DEPLOYER or op in bench.args.helmfile_ops)


def bench_size(bench: Bench, n: int, *, first: bool) -> None:
    args = bench.args
    dirs = dict(zip(TOOLS, specs.generate(bench.work / "specs", n, bench.tools.helm), strict=True))
    ops = set(args.ops)
    warmup: int = args.warmup
    reps = range(warmup + repeats(args, n))

    def warm(rep: int) -> bool:
        return rep < warmup

    if first and "version" in ops:
        for rep in range(args.warmup + max(args.repeat, 10)):
            for tool in tools_for(bench, "version", rep):
                bench.run(tool, "version", 0, rep, warmup=warm(rep), cwd=dirs[tool], prefix="none")

    if "template" in ops:
        for rep in reps:
            for tool in tools_for(bench, "template", rep):
                bench.run(tool, "template", n, rep, warmup=warm(rep), cwd=dirs[tool], prefix="none")
        if "template" in args.helmfile_ops:
            check_template_equivalence(bench, n)
    if args.floor:
        measure_floor(bench, n, dirs[DEPLOYER])

    cluster_ops = ops & {"apply-empty", "diff-nochange", "diff-changed", "diff-cold", "apply-nochange"}
    if not cluster_ops:
        return
    if "apply-empty" in ops:
        large = n >= args.large
        apply_warm = 0 if large else warmup
        apply_reps = min(args.repeat, args.large_apply_repeat) if large else args.repeat
    else:
        apply_warm, apply_reps = 1, 0  # one untimed install to have something to diff against
    prefixes: dict[str, str] = {}
    for rep in range(apply_warm + apply_reps):
        if prefixes:
            bench.cluster.delete_namespaces(prefixes.values())
        prefixes = {tool: f"b{tool[0]}{n}r{rep}" for tool in TOOLS}
        for tool in tools_for(bench, "apply-empty", rep):
            bench.run(
                tool,
                "apply-empty",
                n,
                rep,
                warmup=rep < apply_warm,
                cwd=dirs[tool],
                prefix=prefixes[tool],
            )
            check_installed(bench, tool, n, prefixes[tool], revision=1)
    steady_state(bench, n, dirs, prefixes)
    bench.cluster.delete_namespaces(prefixes.values())


HELM = "helm"
FLOOR_TEMPLATE = "floor-template"
FLOOR_INSTALL = "floor-install"
FLOOR_INSTALL_WAIT = "floor-install-wait"
# What deployer asks of helm on Kubernetes >= 1.27 (deployer/kube.py validates_fields).
FLOOR_INSTALL_WAIT_NOCHECK = "floor-install-wait-nocheck"


def measure_floor(bench: Bench, n: int, spec_dir: Path) -> None:
    """helm alone, on the values deployer gives it (benchmarks/floor.py): `helm template` of every
    release one at a time, and one `helm upgrade --install` of a release of each chart without and
    with `--wait` (into scratch namespaces `bd<N>r99-team-*`, deleted afterwards)."""
    prefix = f"bd{n}r99"
    out = bench.work / "floor" / f"n{n}"
    env = tool_env(bench.tools, DEPLOYER, bench.work, prefix, bench.kubeconfig)
    subprocess.run(
        [
            str(bench.tools.deployer.parent / "python"),
            str(BENCH / "floor.py"),
            "values",
            str(spec_dir),
            str(out),
        ],
        env=env,
        cwd=spec_dir,
        check=True,
    )
    listing = json.loads((out / "releases.json").read_text())
    helm = str(bench.tools.helm)
    log(f"N={n:<3} floor: helm template of {len(listing)} release(s), one at a time")
    for i, rel in enumerate(listing):
        argv = [helm, "template", rel["name"], rel["chart"], "--namespace", rel["namespace"]]
        bench.run(
            HELM,
            FLOOR_TEMPLATE,
            n,
            i,
            warmup=False,
            cwd=spec_dir,
            prefix=prefix,
            argv=[*argv, "--values", rel["values"]],
            quiet=True,
        )
    cpu = sum(r.sample.cpu for r in bench.records if r.op == FLOOR_TEMPLATE and r.n == n)
    log(
        f"N={n:<3} floor: helm template CPU summed {cpu:.2f}s, "
        f"over {os.cpu_count()} cores {cpu / (os.cpu_count() or 1):.2f}s"
    )
    firsts: dict[str, dict[str, str]] = {}
    for rel in listing:
        firsts.setdefault(Path(rel["chart"]).name, rel)
    for i, (chart, rel) in enumerate(sorted(firsts.items())):
        variants: tuple[tuple[str, list[str]], ...] = (
            (FLOOR_INSTALL, []),
            (FLOOR_INSTALL_WAIT, ["--wait"]),
            (FLOOR_INSTALL_WAIT_NOCHECK, ["--wait", "--disable-openapi-validation"]),
        )
        for op, wait in variants:
            base = [helm, "upgrade", "--install", rel["name"], rel["chart"], "--namespace", rel["namespace"]]
            record = bench.run(
                HELM,
                op,
                n,
                i,
                warmup=False,
                cwd=spec_dir,
                prefix=prefix,
                argv=[*base, "--create-namespace", "--values", rel["values"], "--timeout", "300s", *wait],
            )
            record.command = [*record.command, f"# chart {chart}"]
            subprocess.run(
                [helm, "uninstall", rel["name"], "--namespace", rel["namespace"], "--wait"],
                env=tool_env(bench.tools, HELM, bench.work, prefix, bench.kubeconfig),
                capture_output=True,
                check=False,
            )
    bench.cluster.delete_namespaces([prefix])


def steady_state(bench: Bench, n: int, dirs: dict[str, Path], prefixes: dict[str, str]) -> None:
    """diff and apply against the installed releases of the last apply from empty."""
    args = bench.args
    ops = set(args.ops)
    warmup: int = args.warmup
    changed = specs.changed_release(n)
    for rep in range(warmup + repeats(args, n)):
        warm = rep < warmup
        # Without helm-diff, helmfile diff cannot run: its rows use the lower bound (template).
        diff_tools = tools_for(bench, "diff", rep) if bench.tools.helm_plugins else (DEPLOYER,)
        if "diff-nochange" in ops:
            for tool in diff_tools:
                bench.run(tool, "diff-nochange", n, rep, warmup=warm, cwd=dirs[tool], prefix=prefixes[tool])
        if "diff-changed" in ops:
            for tool in diff_tools:
                path, original = specs.change_values(dirs[tool], changed)
                try:
                    bench.run(
                        tool,
                        "diff-changed",
                        n,
                        rep,
                        warmup=warm,
                        cwd=dirs[tool],
                        prefix=prefixes[tool],
                        expected_exit=(2,),
                    )
                finally:
                    path.write_text(original)
        if "diff-cold" in ops:
            cold = Path(tempfile.mkdtemp(prefix="cold-cache-", dir=bench.work))
            try:
                bench.run(
                    DEPLOYER,
                    "diff-cold",
                    n,
                    rep,
                    warmup=warm,
                    cwd=dirs[DEPLOYER],
                    prefix=prefixes[DEPLOYER],
                    cache_dir=cold,
                )
            finally:
                shutil.rmtree(cold, ignore_errors=True)
        if "apply-nochange" in ops:
            for tool in tools_for(bench, "apply-nochange", rep):
                if tool == HELMFILE and not bench.tools.helm_plugins:
                    continue  # helmfile apply needs helm-diff; its sync would upgrade everything
                bench.run(tool, "apply-nochange", n, rep, warmup=warm, cwd=dirs[tool], prefix=prefixes[tool])
    if "apply-nochange" in ops:
        check_installed(bench, DEPLOYER, n, prefixes[DEPLOYER], revision=1)
        if bench.tools.helm_plugins and "apply-nochange" in bench.args.helmfile_ops:
            check_installed(bench, HELMFILE, n, prefixes[HELMFILE], revision=1)


def check_installed(bench: Bench, tool: str, n: int, prefix: str, revision: int) -> None:
    releases = bench.cluster.releases(prefix)
    bad = {k: v for k, v in releases.items() if v != (revision, "deployed")}
    if len(releases) != n or bad:
        bench.failures.append(
            f"N={n} {tool}: expected {n} releases at revision {revision}, deployed, under {prefix}-*; "
            f"found {len(releases)}, not as expected: {dict(list(bad.items())[:5])}"
        )
        log(f"CHECK FAILED: {bench.failures[-1]}")


def check_template_equivalence(bench: Bench, n: int) -> None:
    """Both tools must render the same number of objects of each kind."""
    kinds: dict[str, dict[str, int]] = {}
    for tool in TOOLS:
        last = [r for r in bench.records if r.tool == tool and r.op == "template" and r.n == n][-1]
        out = Path(last.stderr_file).with_suffix(".out").read_text(errors="replace")
        counts: dict[str, int] = {}
        for kind in re.findall(r"(?m)^kind: (\S+)", out):
            counts[kind] = counts.get(kind, 0) + 1
        kinds[tool] = counts
    if kinds[DEPLOYER] != kinds[HELMFILE]:
        bench.failures.append(f"N={n}: template outputs differ in objects per kind: {kinds}")
        log(f"CHECK FAILED: {bench.failures[-1]}")
    else:
        total = sum(kinds[DEPLOYER].values())
        bench.notes.append(
            f"N={n}: both tools rendered the same {total} objects ({_kinds(kinds[DEPLOYER])})."
        )


def _kinds(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


# ---------------------------------------------------------------------------------------------------
# Report


def _timed(bench: Bench, tool: str, op: str, n: int) -> list[Record]:
    return [r for r in bench.records if r.tool == tool and r.op == op and r.n == n and not r.warmup and r.ok]
