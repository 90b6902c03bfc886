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
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from common import BENCH, OPERATIONS, log
from results import include, report, report_from_json, save_json
from steps import Bench, bench_size
from tables import memory_table, table, targets
from tooling import Cluster, locate_tools, snapshot_deployer

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
