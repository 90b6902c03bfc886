#!/usr/bin/env python3
"""deployer vs helmfile, side by side, on the same charts, helm binary and cluster.

    .venv/bin/python benchmarks/run.py [--sizes 10,50,200] [--repeat 5] [--quick]

Needs a cluster in KUBECONFIG (e.g. `tools/sandbox up --dir /tmp/bench-sandbox`). Builds the pinned
helm 3, helmfile and (if the Go module proxy serves it) helm-diff with tools/build. See
benchmarks/README.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import specs
from measure import Sample, Stat, run_measured, stat

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
BUILD = ROOT / "tools" / "build"
DEPLOYER = "deployer"
HELMFILE = "helmfile"
TOOLS = (DEPLOYER, HELMFILE)
ENV = "dev"
CONCURRENCY = "4"
OBSERVED = re.compile(r"observed (\d+) helm release\(s\) in (\d+) API request\(s\)")
KUBE_VERSION = re.compile(r"Kubernetes (v\d+\.\d+\.\d+\S*)")
BENCH_NS = re.compile(r"^b[dh]\d+r\d+-team-[a-d]$")

# Operation -> (title, which helmfile operation it is compared with when helm-diff is missing).
OPERATIONS: dict[str, str] = {
    "version": "`--version` start-up",
    "template": "template",
    "diff-nochange": "diff, nothing changed",
    "diff-changed": "diff, one release changed",
    "diff-cold": "diff, nothing changed, empty deployer cache",
    "apply-empty": "apply from empty",
    "apply-nochange": "apply, nothing changed",
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------
# Tools


@dataclass
class Tools:
    helm: Path
    helmfile: Path
    deployer: Path
    helm_plugins: Path | None  # a HELM_PLUGINS directory holding helm-diff, if it could be built
    helm_diff_problem: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    deployer_src: Path | None = None  # a snapshot of deployer/ taken at start (PYTHONPATH)


def _build(component: str) -> tuple[bool, str]:
    proc = subprocess.run([str(BUILD), component], capture_output=True, text=True, check=False)
    return proc.returncode == 0, proc.stderr.strip()


def _tool_dir(component: str) -> Path:
    out = subprocess.run([str(BUILD), "--path", component], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def snapshot_deployer(work: Path) -> tuple[Path, str]:
    """Copy deployer/ as it is now, so that edits made during a run do not change what is measured.

    Returns the PYTHONPATH directory and a description of the code (commit, local changes)."""
    src = work / "deployer-src"
    shutil.copytree(ROOT / "deployer", src / "deployer", ignore=shutil.ignore_patterns("__pycache__"))

    def git(*argv: str) -> str:
        proc = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(ROOT), *argv],
            capture_output=True,
            text=True,
            check=False,
        )
        return proc.stdout.strip() if proc.returncode == 0 else ""

    commit = git("log", "-1", "--format=%h %s")
    dirty = git("status", "--porcelain", "--", "deployer")
    where = f"commit {commit}" if commit else "no git commit found"
    return src, where + (" plus uncommitted changes in deployer/" if dirty else "")


def build_problem(stderr: str) -> str:
    """One line saying why a Go build failed, without the registry's address."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and "go: downloading" not in line]
    refused = re.search(r"(\S+@v\S+?): reading \S+: (\d{3} [A-Za-z]+)", stderr)
    if refused:
        why = re.search(r"server response: (.*)", stderr)
        detail = f": {why.group(1).strip()}" if why else ""
        return f"the Go module proxy refuses {refused.group(1)} ({refused.group(2).strip()}{detail})"
    return re.sub(r"https?://\S+", "<registry>", lines[-1] if lines else "failed")


def locate_tools(build_helm_diff: bool) -> Tools:
    for component in ("helm3", "helmfile"):
        ok, err = _build(component)
        if not ok:
            sys.exit(f"benchmarks: tools/build {component} failed:\n{err}")
    helm = _tool_dir("helm3") / "helm"
    helmfile = _tool_dir("helmfile") / "helmfile"
    deployer = Path(sys.executable).parent / "deployer"
    if not deployer.exists():
        sys.exit(f"benchmarks: {deployer} not found; run from the project's .venv (tools/setup)")
    plugins_dir = _tool_dir("helm-diff")
    problem = ""
    if build_helm_diff and not (plugins_dir / "diff" / "bin" / "diff").exists():
        ok, err = _build("helm-diff")
        if not ok:
            problem = build_problem(err)
    plugins = plugins_dir if (plugins_dir / "diff" / "bin" / "diff").exists() else None
    if plugins is None:
        problem = problem or "helm-diff is not built (tools/build helm-diff)"
    tools = Tools(helm, helmfile, deployer, plugins, problem)
    env = tool_env(tools, HELMFILE, Path(tempfile.gettempdir()), "none", "")

    def version(argv: list[str], environ: dict[str, str] | None = None) -> str:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=environ)
        return (proc.stdout.strip() or proc.stderr.strip()).splitlines()[0] if proc.returncode == 0 else "?"

    tools.versions = {
        "deployer": version([str(deployer), "--version"]),
        "helm": version([str(helm), "version", "--short"]),
        "helmfile": version([str(helmfile), "--version"], env),
        "helm-diff": version([str(helm), "diff", "version"], env) if plugins else "not available",
    }
    return tools


def tool_env(tools: Tools, tool: str, work: Path, prefix: str, kubeconfig: str) -> dict[str, str]:
    # PYTHON* too: e.g. PYTHONDONTWRITEBYTECODE would make every deployer run recompile its modules.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DEPLOYER_", "HELM_", "HELMFILE_", "PYTHON")) and k != "KUBECONFIG"
    }
    helm_home = work / "helm-home" / tool
    env.update(
        {
            "PATH": f"{tools.helm.parent}{os.pathsep}{env.get('PATH', '')}",
            "KUBECONFIG": kubeconfig,
            "NO_COLOR": "1",
            "BENCH_NS": prefix,
            "HELM_CACHE_HOME": str(helm_home / "cache"),
            "HELM_CONFIG_HOME": str(helm_home / "config"),
            "HELM_DATA_HOME": str(helm_home / "data"),
        }
    )
    if tool == DEPLOYER:
        if tools.deployer_src:
            env["PYTHONPATH"] = str(tools.deployer_src)
        env["DEPLOYER_HELM"] = str(tools.helm)
        env["DEPLOYER_CACHE_DIR"] = str(work / "deployer-cache")
    else:
        env["HELMFILE_UPGRADE_NOTICE_DISABLED"] = "1"  # no network look-up for a newer release
        env["HELMFILE_CACHE_HOME"] = str(work / "helmfile-cache")
        if tools.helm_plugins:
            env["HELM_PLUGINS"] = str(tools.helm_plugins)
    return env


# ---------------------------------------------------------------------------------------------------
# The cluster (lightkube, as deployer itself uses): namespaces and Helm release Secrets


class Cluster:
    def __init__(self, kubeconfig: str) -> None:
        from lightkube import Client, KubeConfig

        self.client = Client(config=KubeConfig.from_file(kubeconfig))

    def bench_namespaces(self) -> list[str]:
        from lightkube.resources.core_v1 import Namespace

        names = [str(ns.metadata.name) for ns in self.client.list(Namespace) if ns.metadata]
        return [name for name in names if BENCH_NS.match(name)]

    def delete_namespaces(self, prefixes: Iterable[str], timeout: float = 900.0) -> None:
        from lightkube.resources.core_v1 import Namespace

        wanted = tuple(f"{p}-" for p in prefixes)
        doomed = [n for n in self.bench_namespaces() if n.startswith(wanted)]
        for name in doomed:
            self.client.delete(Namespace, name)
        deadline = time.monotonic() + timeout
        while doomed and time.monotonic() < deadline:
            left = set(self.bench_namespaces())
            doomed = [n for n in doomed if n in left]
            if doomed:
                time.sleep(1.0)
        if doomed:
            raise SystemExit(f"benchmarks: namespaces not deleted after {timeout:.0f}s: {doomed}")

    def node_count(self) -> int:
        from lightkube.resources.core_v1 import Node

        return len(list(self.client.list(Node)))

    def releases(self, prefix: str) -> dict[str, tuple[int, str]]:
        """namespace/name -> (highest revision, its status) of the Helm releases under `prefix`."""
        from lightkube.resources.core_v1 import Secret

        out: dict[str, tuple[int, str]] = {}
        for secret in self.client.list(Secret, namespace="*", labels={"owner": "helm"}):
            meta = secret.metadata
            ns = str(meta.namespace if meta else "")
            if not meta or not ns.startswith(f"{prefix}-"):
                continue
            labels = meta.labels or {}
            key = f"{ns}/{labels.get('name')}"
            revision = int(labels.get("version", "0"))
            if revision >= out.get(key, (0, ""))[0]:
                out[key] = (revision, str(labels.get("status")))
        return out


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


def baseline_op(bench: Bench, op: str) -> tuple[str, bool]:
    """The helmfile operation `op` is compared with, and whether that is only a lower bound."""
    if bench.tools.helm_plugins or op in ("version", "template"):
        return ("diff-nochange" if op == "diff-cold" else op), False
    if op == "apply-empty":
        return "apply-empty", True  # helmfile sync: apply = diff + sync
    return "template", True  # helmfile diff/apply = template-equivalent render + cluster work


def helmfile_label(bench: Bench, hf_op: str) -> str:
    if hf_op == "version":
        return "--version"
    if hf_op == "template":
        return "template"
    if hf_op.startswith("diff"):
        return "diff"
    return "apply" if bench.tools.helm_plugins else "sync"


def fmt_s(st: Stat) -> str:
    def one(x: float) -> str:
        return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s" if x < 100 else f"{x:.0f} s"

    return f"{one(st.median)} ({one(st.low)}-{one(st.high)})"


def fmt_mb(st: Stat) -> str:
    return f"{st.median / 2**20:.0f} MiB ({st.low / 2**20:.0f}-{st.high / 2**20:.0f})"


def ratio(a: Stat | None, b: Stat | None, lower_bound: bool) -> str:
    if a is None or b is None or b.median == 0:
        return "n/a"
    return f"{'≤ ' if lower_bound else ''}{a.median / b.median:.2f}"


@dataclass
class Row:
    op: str
    n: int
    dep: dict[str, Stat]
    hf: dict[str, Stat]
    hf_label: str
    lower_bound: bool
    runs: tuple[int, int]
    api: list[int]


def rows(bench: Bench) -> list[Row]:
    out: list[Row] = []
    sizes = [0, *bench.args.sizes]
    for op in OPERATIONS:
        for n in sizes:
            if (op == "version") != (n == 0):
                continue
            dep = _timed(bench, DEPLOYER, op, n)
            if not dep:
                continue
            hf_op, lower = baseline_op(bench, op)
            hf = _timed(bench, HELMFILE, hf_op, n)
            label = helmfile_label(bench, hf_op)

            def stats(records: list[Record]) -> dict[str, Stat]:
                if not records:
                    return {}
                return {
                    "wall": stat([r.sample.wall for r in records]),
                    "cpu": stat([r.sample.cpu for r in records]),
                    "tree": stat([r.sample.tree_rss for r in records]),
                    "proc": stat([r.sample.max_proc_rss for r in records]),
                    "root": stat([r.sample.root_rss for r in records]),
                }

            api = [r.api_requests for r in dep if r.api_requests is not None]
            out.append(Row(op, n, stats(dep), stats(hf), label, lower, (len(dep), len(hf)), api))
    return out


def table(bench: Bench) -> str:
    lines = [
        "| operation | N | deployer wall | helmfile wall | wall ratio | deployer CPU | helmfile CPU "
        "| CPU ratio | runs (d/h) | load |",
        "|---|---:|---|---|---:|---|---|---:|---|---|",
    ]
    for row in rows(bench):
        loads = [
            r.load[0]
            for r in bench.records
            if r.n == row.n
            and not r.warmup
            and r.op in (row.op, baseline_op(bench, row.op)[0])
            and r.tool != HELM
        ]
        load = f"{statistics.median(loads):.1f} ({min(loads):.1f}-{max(loads):.1f})" if loads else "-"
        hf_name = f"`helmfile {row.hf_label}`" + (" (lower bound)" if row.lower_bound else "")
        hw = fmt_s(row.hf["wall"]) if row.hf else "n/a"
        hc = fmt_s(row.hf["cpu"]) if row.hf else "n/a"
        lines.append(
            f"| {OPERATIONS[row.op]} vs {hf_name} | {row.n or '-'} | {fmt_s(row.dep['wall'])} | {hw} "
            f"| {ratio(row.dep['wall'], row.hf.get('wall'), row.lower_bound)} | {fmt_s(row.dep['cpu'])} "
            f"| {hc} | {ratio(row.dep['cpu'], row.hf.get('cpu'), row.lower_bound)} "
            f"| {row.runs[0]}/{row.runs[1]} | {load} |"
        )
    return "\n".join(lines)


def _chart_of(record: Record) -> str:
    return record.command[-1].removeprefix("# chart ") if record.command[-1].startswith("# chart") else "?"


# The release mix of benchmarks/specs.py: per group of ten, 1 platform-config, 4 api, 3 webapp, 2 cronjobs.
MIX = {"platform-config": 1, "api": 4, "webapp": 3, "cronjobs": 2}


def floor_section(bench: Bench) -> list[str]:
    """The floor measured in the same run, and each operation's distance from it."""
    cores = os.cpu_count() or 1
    found = {(r.op, r.n): r for r in rows(bench)}
    sizes = sorted({r.n for r in bench.records if r.op == FLOOR_TEMPLATE})
    if not sizes:
        return []
    out = [
        "## The floor: helm alone, measured in the same run",
        "",
        f"*render floor*: the CPU of `helm template` of every release, run one at a time on the values "
        f"deployer gives helm (benchmarks/floor.py), summed, and that sum over the {cores} cores: "
        "no tool that renders each release with helm can take less wall time on this machine. "
        "*ratio* = deployer's median over the floor (wall over the floor; CPU over the summed CPU).",
        "",
        "| N | helm template CPU, summed | floor (sum / cores) | deployer template wall (x floor) "
        "| diff, empty cache: wall (x floor) | diff, empty cache: CPU (x sum) "
        "| helmfile template wall (x floor) |",
        "|---:|---|---|---|---|---|---|",
    ]

    def times(op: str, n: int, what: str, ref: float) -> str:
        row = found.get((op, n))
        if row is None:
            return "not measured"
        st = row.dep[what]
        return f"{fmt_s(st)} ({st.median / ref:.2f}x)"

    for n in sizes:
        cpu = sum(r.sample.cpu for r in bench.records if r.op == FLOOR_TEMPLATE and r.n == n)
        floor = cpu / cores
        hf = found.get(("template", n))
        hft = f"{fmt_s(hf.hf['wall'])} ({hf.hf['wall'].median / floor:.2f}x)" if hf and hf.hf else "not run"
        out.append(
            f"| {n} | {cpu:.2f} s ({1000 * cpu / n:.1f} ms per release) | {floor:.2f} s "
            f"| {times('template', n, 'wall', floor)} | {times('diff-cold', n, 'wall', floor)} "
            f"| {times('diff-cold', n, 'cpu', cpu)} | {hft} |"
        )
    out += [
        "",
        "*install floor*: one `helm upgrade --install` of the first release of each chart into an empty "
        "scratch namespace, without and with `--wait`, and with `--wait --disable-openapi-validation` "
        "(what deployer passes on Kubernetes 1.27+, where helm's client-side check validates nothing; "
        "docs/diff.md) (CPU of the helm process from `os.wait4`; the release is uninstalled in "
        "between). *per release, mix*: weighted by the spec's mix (per ten releases: 1 platform-config, "
        "4 api, 3 webapp, 2 cronjobs), the CPU one release costs helm alone; compare with apply from "
        "empty's CPU per release (x the `--wait` floor, then x the floor without the check).",
        "",
        "| N | chart | install CPU | install --wait CPU | install --wait, no OpenAPI check, CPU "
        "| install --wait wall |",
        "|---:|---|---|---|---|---|",
    ]
    columns = {FLOOR_INSTALL: 0, FLOOR_INSTALL_WAIT: 1, FLOOR_INSTALL_WAIT_NOCHECK: 2}
    for n in sizes:
        per: dict[str, list[float]] = {}
        for r in bench.records:
            if r.n == n and r.op in columns:
                cells = per.setdefault(_chart_of(r), [0.0, 0.0, 0.0, 0.0])
                cells[columns[r.op]] = r.sample.cpu
                if r.op == FLOOR_INSTALL_WAIT:
                    cells[3] = r.sample.wall
        for chart, (a, b, c, w) in sorted(per.items()):
            nocheck = f"{1000 * c:.0f} ms" if c else "not measured"
            out.append(f"| {n} | {chart} | {1000 * a:.0f} ms | {1000 * b:.0f} ms | {nocheck} | {w:.2f} s |")
        if set(MIX) <= per.keys():
            total = sum(MIX.values())
            plain, wait, nocheck_mix = (sum(per[c][i] * k for c, k in MIX.items()) / total for i in range(3))
            dep = found.get(("apply-empty", n))
            dep_txt = ""
            if dep:
                dcpu = dep.dep["cpu"].median / n
                versus = f"{dcpu / wait:.2f}x" + (f", {dcpu / nocheck_mix:.2f}x" if nocheck_mix else "")
                dep_txt = f"; deployer apply from empty: {1000 * dcpu:.0f} ms CPU per release ({versus})"
                if dep.hf:
                    hcpu = dep.hf["cpu"].median / n
                    dep_txt += f", helmfile {dep.hf_label}: {1000 * hcpu:.0f} ms ({hcpu / wait:.2f}x)"
            nocheck_txt = f"{1000 * nocheck_mix:.0f} ms" if nocheck_mix else "not measured"
            out.append(
                f"| {n} | **per release, mix** | {1000 * plain:.0f} ms | {1000 * wait:.0f} ms "
                f"| {nocheck_txt} | {dep_txt.lstrip('; ')} |"
            )
    return [*out, ""]


def growth_table(bench: Bench) -> list[str]:
    """Per added release, between consecutive sizes: the change of the median, wall and CPU."""
    found = {(r.op, r.n): r for r in rows(bench)}
    sizes = sorted({n for (_op, n) in found if n})
    out = [
        "## Growth per added release",
        "",
        "(median at the larger N - median at the smaller N) / (difference in N), for each pair of "
        "consecutive sizes: the cost of one more release once fixed costs are paid. deployer first, "
        "helmfile (or its lower bound) after the slash.",
        "",
        "| operation | "
        + " | ".join(f"N={a}->{b} wall | N={a}->{b} CPU" for a, b in itertools.pairwise(sizes))
        + " |",
        "|---|" + "---|---|" * max(0, len(sizes) - 1),
    ]

    def slope(a: Stat | None, b: Stat | None, na: int, nb: int) -> str:
        if a is None or b is None:
            return "-"
        return f"{1000 * (b.median - a.median) / (nb - na):.1f} ms"

    for op, title in OPERATIONS.items():
        if op == "version":
            continue
        cells = []
        for a, b in itertools.pairwise(sizes):
            ra, rb = found.get((op, a)), found.get((op, b))
            for what in ("wall", "cpu"):
                dep = slope(ra.dep.get(what) if ra else None, rb.dep.get(what) if rb else None, a, b)
                hf = slope(ra.hf.get(what) if ra else None, rb.hf.get(what) if rb else None, a, b)
                cells.append(dep if hf == "-" else f"{dep} / {hf}")
        if any(c != "-" for c in cells):
            out.append(f"| {title} | " + " | ".join(cells) + " |")
    return [*out, ""]


def memory_table(bench: Bench) -> str:
    lines = [
        "| operation | N | deployer tree peak | deployer Python process | deployer largest process "
        "| helmfile tree peak | helmfile largest process | tree ratio "
        "| deployer API requests (observed state) |",
        "|---|---:|---|---|---|---|---|---:|---|",
    ]
    for row in rows(bench):
        api = (
            "-"
            if not row.api
            else (str(row.api[0]) if len(set(row.api)) == 1 else f"{min(row.api)}-{max(row.api)}")
        )
        ht = fmt_mb(row.hf["tree"]) if row.hf else "n/a"
        hp = fmt_mb(row.hf["proc"]) if row.hf else "n/a"
        lines.append(
            f"| {OPERATIONS[row.op]} | {row.n or '-'} | {fmt_mb(row.dep['tree'])} "
            f"| {fmt_mb(row.dep['root'])} | {fmt_mb(row.dep['proc'])} | {ht} | {hp} "
            f"| {ratio(row.dep['tree'], row.hf.get('tree'), False)} | {api} |"
        )
    return "\n".join(lines)


def targets(bench: Bench) -> list[str]:
    found = {(r.op, r.n): r for r in rows(bench)}
    out: list[str] = []

    def versus(op: str, sizes: Sequence[int], needed: float, what: str) -> None:
        for n in sizes:
            row = found.get((op, n))
            if row is None or not row.hf:
                out.append(f"- {what}, N={n}: not measured.")
                continue
            r = row.dep["wall"].median / row.hf["wall"].median
            speedup = 1 / r
            if not row.lower_bound:
                verdict = "**met**" if r <= needed else "**missed**"
            elif r <= needed:
                verdict = "**met** (even against a lower bound of helmfile's cost)"
            else:
                verdict = "**not shown**: against a lower bound of helmfile's cost it is only"
            out.append(
                f"- {what}, N={n}: deployer {fmt_s(row.dep['wall'])} vs `helmfile {row.hf_label}` "
                f"{fmt_s(row.hf['wall'])}: {speedup:.1f}x faster (target {1 / needed:.0f}x): {verdict}"
                + (f" {speedup:.1f}x." if row.lower_bound and r > needed else ".")
            )

    sizes = bench.args.sizes
    versus("diff-nochange", [n for n in sizes if n >= 50] or sizes, 0.1, "diff, nothing changed")
    versus("apply-nochange", sizes, 0.1, "apply, nothing changed")
    versus("template", sizes, 0.5, "template")
    version = found.get(("version", 0))
    if version:
        ms = version.dep["wall"].median * 1000
        out.append(
            f"- `deployer --version` {ms:.0f} ms median (target <= 150 ms): "
            f"{'**met**' if ms <= 150 else '**missed**'}."
        )
    big = max(sizes)
    for op in ("template", "diff-nochange", "apply-nochange", "apply-empty"):
        row = found.get((op, big))
        if row:
            root = row.dep["root"].median / 2**20
            tree = row.dep["tree"].median / 2**20
            out.append(
                f"- peak RSS at N={big}, {OPERATIONS[op]}: deployer's Python process {root:.0f} MiB "
                f"(target <= 250 MB: {'**met**' if root * 2**20 <= 250e6 else '**missed**'}); "
                f"with its helm children, the tree peaks at {tree:.0f} MiB."
            )
    for op in ("diff-nochange", "apply-nochange", "diff-changed"):
        apis = {n: found[(op, n)].api for n in sizes if (op, n) in found and found[(op, n)].api}
        if apis:
            flat = {a for v in apis.values() for a in v}
            detail = ", ".join(f"N={n}: {sorted(set(v))}" for n, v in apis.items())
            out.append(
                f"- API requests for observed state, {OPERATIONS[op]}: {detail}: "
                f"{'**met** (constant)' if len(flat) == 1 else '**missed** (varies with N)'}."
            )
    for op in ("template", "diff-nochange", "apply-nochange", "apply-empty"):
        points = [(n, found[(op, n)].dep["wall"].median) for n in sizes if (op, n) in found]
        if len(points) >= 3:
            (n0, t0), (n1, t1), (n2, t2) = points[0], points[-2], points[-1]
            low = (t1 - t0) / (n1 - n0)
            high = (t2 - t1) / (n2 - n1)
            linear = high <= 1.5 * low
            out.append(
                f"- growth with N, {OPERATIONS[op]}: {1000 * low:.1f} ms per added release from N={n0} to "
                f"{n1}, {1000 * high:.1f} ms from N={n1} to {n2}: "
                f"{'**linear** (or better)' if linear else '**worse than linear**'}."
            )
    return out


def machine() -> list[str]:
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    return [
        f"- CPU: {cpu}, {os.cpu_count()} logical cores (nproc)",
        f"- memory: {mem}",
        f"- OS: {platform.system()} {platform.release()}, Python {platform.python_version()}",
    ]


def versions_env() -> dict[str, str]:
    out = {}
    for line in (ROOT / "tools" / "versions.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out[k] = v
    return out


def report(bench: Bench, started: datetime.datetime, duration: float, argv: Sequence[str]) -> str:
    args = bench.args
    tv = bench.tools.versions
    pinned = versions_env()
    lower = not bench.tools.helm_plugins
    cmd = " ".join(["benchmarks/run.py", *argv])
    parts = [
        "# Benchmarks: deployer vs helmfile",
        "",
        f"Generated by `.venv/bin/python {cmd}` on {started:%Y-%m-%d %H:%M} UTC; the run took "
        f"{duration / 60:.1f} minutes. Every figure is a median over the timed runs with (min-max); "
        f"{args.warmup} warm-up run(s) per operation are not counted. Ratios are deployer/helmfile "
        "medians: below 1 means deployer is faster.",
        *(
            ["", "Records of other runs are included in the tables below: " + "; ".join(bench.included) + "."]
            if bench.included
            else []
        ),
        "",
        "## Machine",
        *machine(),
        "- cluster: the project's loopback sandbox (`tools/sandbox up`): etcd, kube-apiserver, "
        f"kube-controller-manager, kube-scheduler and kwok ({bench.nodes or 3} simulated nodes of 250 pods, "
        "`tools/sandbox up --nodes`) on the same machine, sharing its 2 cores with the tools under test",
        "- **shared machine**: other work (another engineer's test suite and builds) ran on the same 2 "
        "cores during the run; see the *load* column. Wall times are inflated by it; CPU times much less.",
        "",
        "## Versions",
        f"- deployer: {tv.get('deployer')}",
        f"- helm: `{tv.get('helm')}` (tools/build helm3; the same binary for both tools)",
        f"- helmfile: `{tv.get('helmfile')}` "
        f"(tools/build helmfile, HELMFILE_VERSION={pinned.get('HELMFILE_VERSION')})",
        f"- helm-diff: {tv.get('helm-diff')}",
        f"- Kubernetes: {bench.kube_version} (KUBERNETES_VERSION={pinned.get('KUBERNETES_VERSION')}), "
        f"etcd {pinned.get('ETCD_VERSION')}, kwok {pinned.get('KWOK_VERSION')}",
        "",
        "## What runs",
        f"- sizes N = {', '.join(map(str, args.sizes))} releases, environment `{ENV}`; "
        "specs generated by benchmarks/specs.py over the charts of benchmarks/charts.py "
        "(platform-config 14 objects, api 19 with a `file://` subchart, webapp 20 with a `file://` "
        "subchart, cronjobs 10), in groups of ten releases with `needs` three levels deep, "
        "each release with its own values file, an inline map and a dev and prod overlay.",
        f"- {args.repeat} timed runs per operation and N after {args.warmup} warm-up run(s), "
        "alternating which tool goes first, run by run."
        + (
            f" **At N >= {args.large} fewer runs, to keep the whole benchmark near half an hour:** "
            f"{min(args.repeat, args.large_repeat)} timed runs after {args.warmup} warm-up(s) for "
            f"template, diff and apply with nothing changed, and {min(args.repeat, args.large_apply_repeat)} "
            "timed run(s) without a warm-up for apply from empty (each one installs, and afterwards "
            f"deletes, {args.large}+ releases per tool; at N={args.large} one takes minutes on this machine)."
            if any(n >= args.large for n in args.sizes)
            else ""
        ),
        f"- both tools run with `--concurrency {CONCURRENCY}` (deployer's defaults are the number of "
        "CPUs for template/diff and 4 for apply; helmfile's default 0 means one helm process per "
        "release at once), with `wait: true`, `atomic: true`, `timeout: 300` on every release.",
        "- apply from empty installs into fresh namespaces each repetition (the previous repetition's "
        "namespaces are deleted, untimed, before it); diff and apply with nothing changed run against "
        "the last of those installs; 'one release changed' bumps `replicaCount` in one release's "
        "values file, diffs, and restores it.",
        "- deployer keeps its render cache in a benchmark-owned DEPLOYER_CACHE_DIR that stays warm "
        "across runs (as on a developer machine or a CI runner with a cache); the 'empty deployer "
        "cache' row runs `deployer diff` with a new empty DEPLOYER_CACHE_DIR each time.",
        "",
        "Commands (run in the generated spec directory; `BENCH_NS` selects the namespaces):",
        "",
        "```",
    ]
    for op in OPERATIONS:
        for tool in TOOLS:
            if tool == HELMFILE and op == "diff-cold":
                continue
            if tool == HELMFILE and lower and op != "apply-empty" and op.startswith(("diff", "apply")):
                parts.append(f"{op:<15} helmfile: not run, needs helm-diff (compared with template)")
                continue
            argv = bench.command(tool, op)
            shown = [
                Path(a).name if a.startswith("/") and Path(a).name in ("deployer", "helmfile") else a
                for a in argv
            ]
            shown = ["$HELM" if a == str(bench.tools.helm) else a for a in shown]
            parts.append(f"{op:<15} {' '.join(shown)}")
    parts += [
        "```",
        "",
        "Environment: `PATH` starts with the helm 3 directory, `DEPLOYER_HELM=$HELM`, `KUBECONFIG` the "
        "sandbox's, `NO_COLOR=1`, no `PYTHON*` variable but `PYTHONPATH` pointing deployer at the copy "
        "of `deployer/` taken at start (its bytecode is cached there after the warm-up), private "
        "`HELM_CACHE_HOME`/`HELM_CONFIG_HOME`/`HELM_DATA_HOME` per tool, "
        "`HELMFILE_UPGRADE_NOTICE_DISABLED=1` (else `helmfile --version` looks for a newer release "
        "online)" + (", `HELM_PLUGINS` holding helm-diff." if not lower else "."),
        "",
    ]
    if lower:
        parts += [
            "## helm-diff was not available",
            "",
            "helm-diff could not be built here (`tools/build helm-diff`: "
            f"{build_problem(bench.tools.helm_diff_problem)}), and `helmfile diff` "
            "and `helmfile apply` both run `helm diff upgrade` for every release, so they cannot run. "
            "Instead of leaving those rows empty, deployer is compared with a **lower bound** of "
            "helmfile's cost, marked `≤` in the ratio column:",
            "- diff (nothing changed / one release changed) and apply with nothing changed are compared "
            "with `helmfile template` on the same spec: helmfile diff does all that template does (read "
            "the state file, build chart dependencies, render every release with helm) and on top of it "
            "helm-diff fetches each installed release from the cluster and diffs it; `helmfile apply` "
            "with nothing changed is that same diff and then stops.",
            "- apply from empty is compared with `helmfile sync`: `helmfile apply` is a diff followed by "
            "that same sync of every changed release.",
            "So a ratio shown here is an upper bound of the true deployer/helmfile ratio: deployer is at "
            "least that much faster. A target counts as met only if it is met against the lower bound.",
            "",
        ]
    parts += [
        "## Wall time and CPU time",
        "",
        "CPU is user+system time of the whole process tree (helm children included), from `os.wait4`. "
        "*load*: the 1-minute load average (`os.getloadavg()`, as `uptime` prints it) just before each "
        "timed run of the row, median (min-max): the machine was shared, and a load above 2 on its 2 "
        "cores means other work competed for them; CPU time is the figure to compare across rows.",
        "",
        table(bench),
        "",
        *floor_section(bench),
        *growth_table(bench),
        "## Memory and API requests",
        "",
        "*tree peak*: the summed RSS of every process of the command's session, sampled every 50 ms "
        "(a lower bound: a process shorter than 50 ms can be missed). *deployer Python process*: "
        "VmHWM of deployer's own process. *largest process*: `ru_maxrss` from `os.wait4`, the peak of "
        "the single largest process of the tree (Linux reports a maximum over processes, not a sum). "
        "API requests: deployer's own count of requests it made to read the observed state, from its "
        "`observed N helm release(s) in K API request(s)` line.",
        "",
        memory_table(bench),
        "",
        "## Targets of issue 6",
        "",
        *targets(bench),
        "",
        "## Checks",
        "",
        *[f"- {n}" for n in bench.notes],
        "- after each apply from empty, every release of that tool was found deployed at revision 1 "
        "(Helm release Secrets); after the applies with nothing changed, deployer's releases were "
        "still at revision 1 (nothing was upgraded).",
    ]
    if bench.failures:
        parts += ["", "## Failures and unexpected exits", ""]
        parts += [f"- {f}" for f in bench.failures]
    notes = BENCH / "notes.md"
    if notes.exists():
        parts += ["", notes.read_text().strip()]
    return "\n".join(parts) + "\n"


def save_json(bench: Bench, path: Path, started: datetime.datetime, duration: float) -> None:
    data: dict[str, Any] = {
        "started": started.isoformat(),
        "duration_s": duration,
        "argv": sys.argv[1:],
        "args": {k: v for k, v in vars(bench.args).items()},
        "tools": {
            "helm": str(bench.tools.helm),
            "helmfile": str(bench.tools.helmfile),
            "deployer": str(bench.tools.deployer),
            "helm_plugins": str(bench.tools.helm_plugins) if bench.tools.helm_plugins else None,
            "helm_diff_problem": bench.tools.helm_diff_problem,
            "deployer_src": str(bench.tools.deployer_src) if bench.tools.deployer_src else None,
        },
        "versions": bench.tools.versions,
        "kubernetes": bench.kube_version,
        "nodes": bench.nodes,
        "notes": bench.notes,
        "failures": bench.failures,
        "records": [
            {**{k: v for k, v in asdict(r).items() if k != "sample"}, **asdict(r.sample)}
            for r in bench.records
        ],
    }
    path.write_text(json.dumps(data, indent=1) + "\n")


def load_records(path: Path) -> list[Record]:
    data = json.loads(path.read_text())
    sample_fields = set(Sample.__dataclass_fields__)
    out = []
    for raw in data["records"]:
        sample = Sample(**{k: v for k, v in raw.items() if k in sample_fields})
        rest = {k: v for k, v in raw.items() if k not in sample_fields}
        rest["expected_exit"] = tuple(rest["expected_exit"])
        rest["load"] = tuple(rest.get("load", (0.0, 0.0, 0.0)))
        out.append(Record(sample=sample, **rest))
    return out


def include(bench: Bench, path: Path, *, into_args: bool = True) -> None:
    """Add an earlier run's records (its sizes too) to this report, e.g. N=1000 measured apart."""
    data = json.loads(path.read_text())
    # A results.json holds the records it included when it was made: never count them twice.
    seen = {_record_key(r) for r in bench.records}
    bench.records += [r for r in load_records(path) if _record_key(r) not in seen]
    if into_args:
        bench.included.append(
            f"`.venv/bin/python benchmarks/run.py {' '.join(data['argv'])}` on {data['started'][:16]} UTC "
            f"({data['duration_s'] / 60:.1f} minutes; N = {', '.join(map(str, data['args']['sizes']))}; "
            f"deployer: {data['versions'].get('deployer')}; {data.get('nodes', '?')} kwok nodes)"
        )
        bench.args.sizes = sorted({*bench.args.sizes, *data["args"]["sizes"]})
        bench.notes += [f"(from {path.name}, run {data['started'][:16]}) {n}" for n in data["notes"]]
        bench.failures += data["failures"]


def _record_key(record: Record) -> str:
    return json.dumps(asdict(record), sort_keys=True, default=str)


def _beside(source: Path, included: Path) -> Path:
    """An included results file as recorded, or, when that path is gone (a run's work directory, or
    another machine), the file of that name next to `source` (benchmarks/results-n1000.json)."""
    return included if included.exists() else source.parent / included.name


def report_from_json(source: Path, output: Path, extra: Sequence[str] = ()) -> None:
    """Rewrite RESULTS.md from a results.json (e.g. after editing benchmarks/notes.md)."""
    data = json.loads(source.read_text())
    t = data["tools"]
    tools = Tools(
        Path(t["helm"]),
        Path(t["helmfile"]),
        Path(t["deployer"]),
        Path(t["helm_plugins"]) if t["helm_plugins"] else None,
        t["helm_diff_problem"],
        data["versions"],
    )
    args = argparse.Namespace(**data["args"])
    bench = Bench(args, tools, "", Path(tempfile.gettempdir()), None)
    bench.kube_version, bench.notes, bench.failures = data["kubernetes"], data["notes"], data["failures"]
    bench.nodes = data.get("nodes", 0)
    for path in [source, *(_beside(source, Path(p)) for p in [*getattr(args, "include", []), *extra])]:
        include(bench, path, into_args=path != source)
    started = datetime.datetime.fromisoformat(data["started"])
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report(bench, started, data["duration_s"], data["argv"]))


# ---------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--sizes", default="10,50,200", help="release counts (default 10,50,200)")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per operation (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up runs first (default 1)")
    p.add_argument("--quick", action="store_true", help="N=10, 2 runs, 1 warm-up; writes no RESULTS.md")
    p.add_argument("--large", type=int, default=200, help="N from which runs repeat less (default 200)")
    p.add_argument("--large-repeat", type=int, default=3, help="timed runs at N >= --large (default 3)")
    p.add_argument(
        "--large-apply-repeat",
        type=int,
        default=1,
        help="timed apply-from-empty runs, without warm-up, at N >= --large (default 1)",
    )
    p.add_argument("--ops", default=",".join(OPERATIONS), help="operations to run (comma-separated)")
    p.add_argument(
        "--helmfile-ops",
        default=None,
        help="operations helmfile runs too (default: all of --ops); e.g. template at N=1000",
    )
    p.add_argument("--no-floor", dest="floor", action="store_false", help="do not measure helm's floor")
    p.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="JSON",
        help="add the records of an earlier run's results.json to the report (e.g. N=1000 run apart)",
    )
    p.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG", ""))
    p.add_argument("--output", default=None, help="RESULTS.md path (default benchmarks/RESULTS.md)")
    p.add_argument("--keep-work", action="store_true", help="keep the generated specs and logs")
    p.add_argument("--no-helm-diff-build", action="store_true", help="do not try to build helm-diff")
    p.add_argument(
        "--report-from",
        default=None,
        metavar="JSON",
        help="only rewrite --output (default benchmarks/RESULTS.md) from a results.json",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.repeat, args.warmup = "10", 2, 1
    args.sizes = [int(s) for s in str(args.sizes).split(",")]
    args.ops = [o for o in args.ops.split(",") if o]
    args.helmfile_ops = list(args.ops) if args.helmfile_ops is None else args.helmfile_ops.split(",")
    if "diff-nochange" in args.helmfile_ops or "diff-changed" in args.helmfile_ops:
        args.helmfile_ops.append("diff")
    unknown = set(args.ops) - set(OPERATIONS)
    if unknown:
        p.error(f"unknown operation(s) {sorted(unknown)}; known: {', '.join(OPERATIONS)}")
    if not args.kubeconfig and not args.report_from:
        p.error("no cluster: set KUBECONFIG or --kubeconfig (e.g. from `tools/sandbox up --dir DIR`)")
    if args.output is None and not args.quick:
        args.output = str(BENCH / "RESULTS.md")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.report_from:
        report_from_json(Path(args.report_from), Path(args.output or BENCH / "RESULTS.md"), args.include)
        return 0
    started = datetime.datetime.now(datetime.UTC)
    t0 = time.monotonic()
    tools = locate_tools(build_helm_diff=not args.no_helm_diff_build)
    work = Path(tempfile.mkdtemp(prefix="deployer-bench-"))
    log(f"work directory: {work}")
    tools.deployer_src, code = snapshot_deployer(work)
    tools.versions["deployer"] += f" ({code}; measured from a copy taken at start)"
    for name, version in tools.versions.items():
        log(f"{name}: {version}")
    cluster = Cluster(args.kubeconfig)
    leftovers = cluster.bench_namespaces()
    if leftovers:
        log(f"deleting {len(leftovers)} namespace(s) a previous run left behind")
        cluster.delete_namespaces(sorted({n.rsplit("-team-", 1)[0] for n in leftovers}))
    bench = Bench(args, tools, args.kubeconfig, work, cluster)
    bench.nodes = cluster.node_count()
    try:
        for i, n in enumerate(args.sizes):
            bench_size(bench, n, first=i == 0)
    finally:
        leftovers = cluster.bench_namespaces()
        if leftovers:
            cluster.delete_namespaces(sorted({n.rsplit("-team-", 1)[0] for n in leftovers}))
    duration = time.monotonic() - t0
    save_json(bench, Path(work) / "results-partial.json", started, duration)
    for extra in args.include:
        include(bench, Path(extra))
    print(table(bench))
    print()
    print(memory_table(bench))
    print()
    print("\n".join(targets(bench)))
    if bench.failures:
        print("\nFAILURES:\n" + "\n".join(bench.failures))
    if args.output:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report(bench, started, duration, sys.argv[1:]))
        save_json(bench, out.with_name("results.json"), started, duration)
        log(f"wrote {out} and {out.with_name('results.json')}")
    if args.keep_work:
        log(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    log(f"done in {duration / 60:.1f} minutes")
    return 1 if bench.failures else 0


if __name__ == "__main__":
    sys.exit(main())
