"""The report's tables: times and ratios, the helm floor, growth per release, memory, the targets."""

from __future__ import annotations

import itertools
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from common import DEPLOYER, HELMFILE, OPERATIONS
from measure import Stat, stat
from steps import (
    FLOOR_INSTALL,
    FLOOR_INSTALL_WAIT,
    FLOOR_INSTALL_WAIT_NOCHECK,
    FLOOR_TEMPLATE,
    HELM,
    Bench,
    Record,
    _timed,
)


# ---------------------------------------------------------------------------------------------------
# Report
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
