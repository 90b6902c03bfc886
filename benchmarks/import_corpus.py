#!/usr/bin/env python3
"""`deployer import helmfile` measured on repositories that are already on disk.

    .venv/bin/python benchmarks/import_corpus.py [--list FILE] [DIR ...] [--out FILE]

For each repository directory: find its helmfile state files, import each into a temporary directory
(never into the repository), `deployer validate` what was written, count the import report's lines,
and per environment compare `deployer template -e ENV` with `helmfile template -e ENV` object by
object where both can render offline. Also checks that no hook ran (marker executables first on PATH
for every command a hook names, and the repository left byte for byte as it was) and that no value of
the process environment (a canary per `requiredEnv`/`env` name) or secret-looking literal was
written. Nothing is downloaded: HTTP(S) goes to a dead proxy, only loopback is reachable.

--list FILE: one repository per line, `PATH [LABEL]` (LABEL e.g. owner/name@commit; default: the
directory's name). Output: a Markdown report (tables, totals, causes ranked by repositories),
deterministic for the same inputs. docs/import-corpus.md says how the corpus was built.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from corpus_common import (
    canary,
    common_arguments,
    deployer_binary,
    emit,
    env_names,
    first_error,
    normalise,
    offline_env,
    run,
)
from corpus_render import render_one
from corpus_report import lock_only, markdown

STATE_NAMES = ("helmfile.yaml", "helmfile.yml", "helmfile.yaml.gotmpl", "helmfile.yml.gotmpl", "helmfile.d")
SKIP_DIRS = {".git", "node_modules", "vendor", ".terraform"}
# Commands hooks commonly name, besides those found in the files: each becomes a marker executable.
HOOK_COMMANDS = {"kubectl", "bash", "sh", "curl", "wget", "jq", "yq", "echo", "make", "helm-secrets", "touch"}
SECRET_KEY = re.compile(
    r"^\s*-?\s*[\"']?([A-Za-z_.-]*(?:password|passwd|secret|token|apikey|api_key|privatekey|private_key|"
    r"clientsecret|accesskey|access_key))[\"']?\s*:\s*(.+?)\s*$",
    re.IGNORECASE,
)
SECRET_PATTERN = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----|\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{30,}"
)


@dataclass
class StateResult:
    repo: str
    state: str
    templated: bool
    import_ok: bool = False
    import_why: str = ""
    report_lines: int = 0
    report_causes: list[str] = field(default_factory=list)
    report_notes: int = 0
    note_causes: list[str] = field(default_factory=list)
    environments: list[str] = field(default_factory=list)
    validate_ok: bool | None = None
    validate_why: str = ""
    validate_lock_only: bool = False  # every validate error is a chart deployer.lock.yaml does not lock
    renders: list[tuple[str, str, str]] = field(default_factory=list)  # env, equal/differs/..., detail
    hooks_ran: list[str] = field(default_factory=list)
    canary_leaks: list[str] = field(default_factory=list)
    secret_like: list[str] = field(default_factory=list)


def state_files(repo: Path) -> list[Path]:
    """The top-level state files: one per directory (helmfile's own order of preference), and none
    below a directory that already has one (those are its nested helmfiles: or release files)."""
    found: dict[Path, Path] = {}
    for path in sorted(repo.rglob("helmfile*")):
        rel = path.relative_to(repo)
        if any(part in SKIP_DIRS for part in rel.parts) or path.name not in STATE_NAMES:
            continue
        if path.is_dir() and not any(path.glob("*.y*ml*")):
            continue
        prev = found.get(path.parent)
        if prev is None or STATE_NAMES.index(path.name) < STATE_NAMES.index(prev.name):
            found[path.parent] = path
    dirs = sorted(found)
    top = [d for d in dirs if not any(o != d and o in d.parents for o in dirs)]
    return [found[d] for d in top]


def _texts(state: Path) -> list[tuple[Path, str]]:
    files = sorted(state.glob("*")) if state.is_dir() else [state]
    root = state if state.is_dir() else state.parent
    files += sorted(p for p in root.rglob("*") if p.suffix in {".gotmpl", ".yaml", ".yml"} and p not in files)
    out = []
    for p in files[:400]:
        try:
            if p.is_file() and p.stat().st_size < 1_000_000:
                out.append((p, p.read_text(errors="replace")))
        except OSError:
            continue
    return out


def is_templated(state: Path) -> bool:
    files = sorted(state.glob("*")) if state.is_dir() else [state]
    return any(
        p.name.endswith(".gotmpl") or "{{" in p.read_text(errors="replace") for p in files if p.is_file()
    )


def hook_commands(texts: Iterable[str]) -> set[str]:
    names = set(HOOK_COMMANDS)
    for text in texts:
        for cmd in re.findall(r"command:\s*[\"']?([A-Za-z0-9_.-]+)[\"']?\s*$", text, re.MULTILINE):
            names.add(cmd)
    return {n for n in names if "/" not in n and n not in {".", ".."}}


def make_markers(bin_dir: Path, log: Path, names: Iterable[str]) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        exe = bin_dir / name
        exe.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\nexit 0\n')
        exe.chmod(0o755)


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            h.update(f"{p.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def report_rows(report: str, notes: bool = False) -> list[tuple[str, str, str]]:
    """The report's rows: its losses, or (notes=True) the rows under "## Notes"."""
    rows = []
    losses, _, noted = report.partition("\n## Notes\n")
    for line in (noted if notes else losses).splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) >= 3:
                rows.append((cells[0], cells[1], " | ".join(cells[2:])))
    return rows


def row_cause(what: str, happened: str) -> str:
    what = re.sub(r"\[[^\]]*\]", "[*]", what.strip("`"))
    what = re.sub(r"^releases\[\*\]\.|^helmDefaults\.", "", what)
    head = re.sub(r"[^\s'\"`]*/[^\s'\"`]*|\S+\.ya?ml(?:\.gotmpl)?", "PATH", happened)
    head = re.split(r";", head, maxsplit=1)[0]
    return f"`{what}`: {normalise(head)}"


def secret_findings(files: Iterable[tuple[str, str]], source_texts: Iterable[str]) -> list[str]:
    source = "\n".join(source_texts)
    found = []
    for name, text in files:
        for n, line in enumerate(text.splitlines(), 1):
            m = SECRET_KEY.match(line)
            value = m.group(2).strip("\"'") if m else ""
            key = m.group(1).lower() if m else ""
            plausible = bool(
                m
                and len(value) >= 6
                and not value.startswith(("${", "!var", "{", "[", "&", "*", "|", ">", "#", "!"))
                and not key.startswith(("existing", "use"))
                and not key.endswith(("ref", "name", "key", "keys", "file", "path", "secret"))
                and value.lower() not in {"null", "true", "false", "changeme", "required"}
            )
            if plausible or SECRET_PATTERN.search(line):
                where = (
                    "already in clear in the repository"
                    if value and value in source
                    else "not in the repository"
                )
                found.append(f"{name}:{n} ({where})")
    return found


def import_one(repo: Path, label: str, state: Path, tools: argparse.Namespace) -> StateResult:
    texts = _texts(state)
    result = StateResult(
        repo=label,
        state=str(state.relative_to(repo)),
        templated=is_templated(state),
    )
    with tempfile.TemporaryDirectory(prefix="import-corpus-") as tmp_name:
        tmp = Path(tmp_name)
        out, home, marker_log = tmp / "out", tmp / "home", tmp / "hooks.log"
        out.mkdir()
        make_markers(tmp / "markers", marker_log, hook_commands(t for _, t in texts))
        canaries = {n: canary(n) for n in sorted(env_names("\n".join(t for _, t in texts)))}
        env = offline_env(home, path_first=tmp / "markers", extra=canaries)
        before = tree_digest(repo)
        proc = run(
            [tools.deployer, "import", "helmfile", state, "--helmfile", tools.helmfile, "--helm", tools.helm],
            out,
            env,
            tools.timeout,
        )
        if marker_log.exists():
            result.hooks_ran = sorted(set(marker_log.read_text().split("\n")) - {""})
        if tree_digest(repo) != before:
            result.hooks_ran.append("the repository's files changed during the import")
        written = sorted(p for p in out.rglob("*") if p.is_file())
        files = [(str(p.relative_to(out)), p.read_text(errors="replace")) for p in written]
        result.canary_leaks = sorted(
            f"{name} in {fname}" for name, value in canaries.items() for fname, text in files if value in text
        )
        result.secret_like = secret_findings(files, (t for _, t in texts))
        if proc.code != 0:
            result.import_why = normalise(first_error(proc.err or proc.out), repo, out, tmp)
            return result
        result.import_ok = True
        if tools.keep is not None:
            repo_dir = label.split("@", maxsplit=1)[0].replace("/", "+")
            kept = tools.keep / repo_dir / result.state.replace("/", "+")
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(out, kept)
        report = (out / "IMPORT-REPORT.md").read_text() if (out / "IMPORT-REPORT.md").exists() else ""
        rows = report_rows(report)
        result.report_lines = len(rows)
        result.report_causes = sorted({row_cause(what, happened) for _, what, happened in rows})
        notes = report_rows(report, notes=True)
        result.report_notes = len(notes)
        result.note_causes = sorted({row_cause(what, happened) for _, what, happened in notes})
        # The variables the written spec asks for (${VAR}) get placeholders, as a user sets them;
        # encrypted values files are not decrypted (nobody's keys are here).
        text = "\n".join(t for _, t in files)
        asked = sorted(set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text)))
        env = {**env, **{name: env.get(name, f"placeholder-{name.lower()}") for name in asked}}
        # A variable the spec reads only with a default (${VAR:-x}) is left unset, as by a user who
        # never sets it: the import's canary there would name a chart or repository that is not.
        defaulted = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):-", text))
        defaulted -= set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text))
        env = {k: v for k, v in env.items() if k not in defaulted}
        val = run([tools.deployer, "validate", "--no-color", "--no-decrypt"], out, env, tools.timeout)
        result.validate_ok = val.code == 0
        if val.code != 0:
            result.validate_why = normalise(first_error(val.err or val.out), repo, out, tmp)
            result.validate_lock_only = lock_only(val.err or val.out)
        result.environments = _environments(out)
        if tools.render:
            for name in result.environments[: tools.max_envs]:
                result.renders.append(render_one(state, out, name, env, tools, roots=(repo, out, tmp)))
    return result


def _environments(out: Path) -> list[str]:
    try:
        spec = yaml.safe_load((out / "deployer.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return []
    envs = spec.get("environments") if isinstance(spec, dict) else None
    return sorted(str(e) for e in envs) if isinstance(envs, dict) else []


def inputs(args: argparse.Namespace) -> list[tuple[Path, str]]:
    pairs = [(Path(p), Path(p).name) for p in args.dirs]
    if args.list:
        for line in Path(args.list).read_text().splitlines():
            parts = line.split("#", 1)[0].split()
            if parts:
                pairs.append((Path(parts[0]), parts[1] if len(parts) > 1 else Path(parts[0]).name))
    return sorted({(p.resolve(), label) for p, label in pairs}, key=lambda x: x[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dirs", nargs="*", help="repository directories (already checked out)")
    parser.add_argument("--list", help="a file of repository directories, `PATH [LABEL]` per line")
    parser.add_argument("--max-states", type=int, default=4, help="state files per repository (default: 4)")
    parser.add_argument(
        "--max-envs", type=int, default=3, help="environments rendered per state (default: 3)"
    )
    parser.add_argument("--no-render", dest="render", action="store_false", help="skip the render comparison")
    parser.add_argument(
        "--keep",
        type=Path,
        help="copy each import's output (spec, IMPORT-REPORT.md) to KEEP/OWNER+NAME/STATE",
    )
    common_arguments(parser)
    args = parser.parse_args(argv)
    args.deployer = deployer_binary(args.deployer)
    repos = inputs(args)
    if not repos:
        parser.error("no repositories: give directories or --list FILE")
    results: list[StateResult] = []
    skipped: dict[str, int] = {}
    started = time.monotonic()
    for repo, label in repos:
        states = state_files(repo)
        if not states:
            results.append(
                StateResult(repo=label, state="(none)", templated=False, import_why="no helmfile state file")
            )
            continue
        skipped[label] = max(0, len(states) - args.max_states)
        for state in states[: args.max_states]:
            t0 = time.monotonic()
            results.append(import_one(repo, label, state, args))
            print(f"{label} {results[-1].state}: {time.monotonic() - t0:.1f}s", file=sys.stderr)
    text = markdown(results, skipped)
    print(f"{len(repos)} repositories in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return emit(text, args.out)


if __name__ == "__main__":
    sys.exit(main())
