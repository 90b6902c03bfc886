"""The Markdown report of benchmarks/import_corpus.py: one row per state file, totals per repository,
and the causes ranked by the number of repositories they hit. Sorted throughout (deterministic)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol


class Result(Protocol):
    repo: str
    state: str
    templated: bool
    import_ok: bool
    import_why: str
    report_lines: int
    report_causes: list[str]
    report_notes: int
    note_causes: list[str]
    validate_ok: bool | None
    validate_why: str
    validate_lock_only: bool
    renders: list[tuple[str, str, str]]
    hooks_ran: list[str]
    canary_leaks: list[str]
    secret_like: list[str]


# Known shapes of helmfile's and deployer's messages, named by what they mean (for the ranking; the
# table per state file keeps each message as it was).
KNOWN = (
    (
        "Add the .gotmpl file extension",
        "a templated state file named .yaml: helmfile v1 reads it as plain YAML",
    ),
    ("environment values file matching", "an environment whose values files are not in the repository"),
    ("map has no entry for key", "an environment helmfile itself cannot render (a key it lacks)"),
    ("failed to perform", "helmfile pulls an OCI chart while resolving the state (network)"),
    ("yaml: unmarshal errors", "the resolved state does not unmarshal (a typed field holds a string)"),
    ("failed loading environment secrets", "encrypted environment secrets (sops) cannot be read"),
)


_LOCK = "which deployer.lock.yaml does not lock"
NEEDS_LOCK = "needs `deployer lock`"


def lock_only(output: str) -> bool:
    """Whether every error `deployer validate` printed is a release whose chart deployer.lock.yaml does
    not lock (an unpinned or ranged version): the user runs `deployer lock`, which needs the network
    this measurement does not have; nothing else is wrong with the spec."""
    errors = [ln for ln in output.splitlines() if ln.lower().startswith("error:")]
    return bool(errors) and all(_LOCK in ln for ln in errors)


def validated(r: Result) -> str:
    """pass / needs `deployer lock` / FAIL / - (not imported)."""
    if r.validate_ok is None:
        return "-"
    return "pass" if r.validate_ok else NEEDS_LOCK if r.validate_lock_only else "FAIL"


def cause(message: str) -> str:
    for needle, name in KNOWN:
        if needle in message:
            return name
    return message


def status(r: Result) -> str:
    if not r.import_ok:
        return "failed"
    return "carried" if r.report_lines else "complete"


def repo_status(rs: Sequence[Result]) -> str:
    kinds = {status(r) for r in rs}
    return "failed" if "failed" in kinds else "carried" if "carried" in kinds else "complete"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _pct(n: int, d: int) -> str:
    return f"{n}/{d} ({100 * n / d:.0f}%)" if d else "0/0"


def _ranked(title: str, causes: Mapping[str, set[str]]) -> list[str]:
    if not causes:
        return [f"### {title}", "", "None.", ""]
    lines = [f"### {title}", "", "| cause | repos | which |", "|---|---:|---|"]
    for cause, repos in sorted(causes.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        which = ", ".join(sorted(repos)[:4]) + (", …" if len(repos) > 4 else "")
        lines.append(f"| {_cell(cause)} | {len(repos)} | {_cell(which)} |")
    return [*lines, ""]


def _render_cell(r: Result) -> str:
    if not r.renders:
        return "-"
    return "; ".join(f"{env}: {verdict}" for env, verdict, _ in r.renders)


def _by_repo(results: Iterable[Result]) -> dict[str, list[Result]]:
    by: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        by[r.repo].append(r)
    return dict(sorted(by.items()))


def markdown(results: Sequence[Result], skipped: Mapping[str, int]) -> str:
    by = _by_repo(results)
    n = len(by)
    counts = {
        k: sum(1 for rs in by.values() if repo_status(rs) == k) for k in ("complete", "carried", "failed")
    }
    templated = sum(1 for rs in by.values() if any(r.templated for r in rs))
    imported = [r for r in results if r.import_ok]
    valid_repos = sum(1 for rs in by.values() if all(r.import_ok and r.validate_ok for r in rs))
    lock_repos = sum(
        1
        for rs in by.values()
        if all(r.import_ok and validated(r) in ("pass", NEEDS_LOCK) for r in rs)
        and any(validated(r) == NEEDS_LOCK for r in rs)
    )
    passed = sum(1 for r in imported if r.validate_ok)
    lock = sum(1 for r in imported if validated(r) == NEEDS_LOCK)
    renders = [(r.repo, v.split(" (", 1)[0]) for r in results for _, v, _ in r.renders]
    verdicts = sorted({v for _, v in renders})
    lines = [
        "## Totals",
        "",
        f"- Repositories: {n} ({n - templated} plain, {templated} templated); state files: {len(results)}"
        f" ({sum(skipped.values())} more not run, past --max-states).",
        "- Complete (imported, nothing lost: no loss line, notes apart): "
        f"{_pct(counts['complete'], n)}; carried with report"
        f" lines: {_pct(counts['carried'], n)}; failed: {_pct(counts['failed'], n)} (a repository counts"
        " as its worst state file).",
        f"- Report lines: {sum(r.report_lines for r in imported)} over {len(imported)} imported state files"
        f" (and {sum(r.report_notes for r in imported)} notes: carried over as it was, advice or a next"
        " step).",
        f"- `deployer validate` passes: {_pct(passed, len(imported))} of imported state files;"
        f" repositories whose every state file imports and validates: {_pct(valid_repos, n)}.",
        f"- `deployer validate` fails only for want of `deployer lock` (every error is an unpinned chart"
        f" deployer.lock.yaml does not lock; locking needs the network, which this run does not have):"
        f" {lock} state files, {lock_repos} repositories. Counting those as passing:"
        f" {_pct(passed + lock, len(imported))} of imported state files; repositories:"
        f" {_pct(valid_repos + lock_repos, n)}.",
        "- Renders per environment: "
        + (", ".join(f"{v} {sum(1 for _, x in renders if x == v)}" for v in verdicts) or "none")
        + f" (repositories with at least one equal render:"
        f" {len({repo for repo, v in renders if v.startswith('equal')})}).",
        "- Hooks run by an import: "
        f"{sum(1 for rs in by.values() if any(r.hooks_ran for r in rs))} repositories;"
        f" values of the process environment written in clear:"
        f" {sum(1 for rs in by.values() if any(r.canary_leaks for r in rs))};"
        f" secret-looking values written: {sum(1 for rs in by.values() if any(r.secret_like for r in rs))}"
        f" ({sum(1 for r in results for s in r.secret_like if 'already in clear' not in s)}"
        " not in clear in the repository itself).",
        "",
        "## Per state file",
        "",
        "| repo | state file | kind | import | validate | render (helmfile vs deployer) | hooks / secrets"
        " | why |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for repo, rs in by.items():
        for r in rs:
            imp = (
                "failed"
                if not r.import_ok
                else f"carried ({r.report_lines})"
                if r.report_lines
                else "complete"
            )
            val = validated(r)
            safety = ", ".join(
                x
                for x in (
                    f"hooks ran: {len(r.hooks_ran)}" if r.hooks_ran else "",
                    f"env values in clear: {len(r.canary_leaks)}" if r.canary_leaks else "",
                    f"secret-looking: {len(r.secret_like)}" if r.secret_like else "",
                )
                if x
            )
            why = r.import_why or r.validate_why
            lines.append(
                f"| {_cell(repo)} | `{_cell(r.state)}` | {'templated' if r.templated else 'plain'}"
                f" | {imp} | {val} | {_cell(_render_cell(r))} | {safety or 'none'} | {_cell(why)} |"
            )
    lines += ["", "## Causes, ranked by repositories", ""]
    fail: dict[str, set[str]] = defaultdict(set)
    invalid: dict[str, set[str]] = defaultdict(set)
    needs_lock: dict[str, set[str]] = defaultdict(set)
    carried: dict[str, set[str]] = defaultdict(set)
    noted: dict[str, set[str]] = defaultdict(set)
    render: dict[str, set[str]] = defaultdict(set)
    for r in results:
        if r.import_why:
            fail[cause(r.import_why)].add(r.repo)
        if r.validate_why and validated(r) == NEEDS_LOCK:
            needs_lock["an unpinned chart deployer.lock.yaml does not lock (only that)"].add(r.repo)
        elif r.validate_why:
            invalid[r.validate_why].add(r.repo)
        for c in r.report_causes:
            carried[c].add(r.repo)
        for c in r.note_causes:
            noted[c].add(r.repo)
        for _, verdict, detail in r.renders:
            kind = verdict.split(" (", 1)[0]
            if not kind.startswith("equal"):
                render[f"{kind}: {_diff_kind(detail) if kind == 'differs' else cause(detail)}"].add(r.repo)
    lines += _ranked("Import failed", fail)
    lines += _ranked("Imported, then `deployer validate` failed", invalid)
    lines += _ranked(
        "Imported, then `deployer validate` needs `deployer lock` (network) and nothing else", needs_lock
    )
    lines += _ranked("Report lines (what was not carried over as it was)", carried)
    lines += _ranked("Notes (carried over as it was: advice about the source, or a next step)", noted)
    lines += _ranked("Renders not equal", render)
    lines += ["## Render differences in full", ""]
    for r in results:
        for env, verdict, detail in r.renders:
            if verdict.startswith("differs"):
                lines.append(f"- {r.repo} `{r.state}` -e {env}: {detail}")
    written = [
        f"- {r.repo} `{r.state}`: {x}"
        for r in results
        for x in (*r.hooks_ran, *r.canary_leaks, *r.secret_like)
    ]
    lines += ["", "## Hooks run and values written", "", *(written or ["None."]), ""]
    return "\n".join(lines)


def _diff_kind(detail: str) -> str:
    """The kind of a render difference, for ranking: missing / extra / differs."""
    kinds = sorted({part.strip().split(" ", 1)[0] for part in detail.split(";") if part.strip()})
    return "objects " + "/".join(k for k in kinds if k in {"missing", "extra", "differs"})
