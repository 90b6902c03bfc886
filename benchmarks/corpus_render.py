"""helmfile's render against deployer's, for one environment of an imported state file: the whole
state when helmfile can render it offline, else each release whose chart is local (selected by name
in both tools), since most real state files mix local charts with charts from remote repositories."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml
from corpus_common import compare, first_error, normalise, objects, run

# What helmfile or helm say when a chart or values file is only on the network (every HTTP(S) request
# goes to a dead proxy; with --skip-deps a chart repository is never added, so its charts are "not found").
NETWORK = ("127.0.0.1:9", "proxyconnect", "no such host", "dial tcp", "could not resolve host")


def _needs_network(err: str) -> bool:
    low = err.lower()
    return any(m in low for m in NETWORK) or ("error: repo " in low and " not found" in low)


def _failure(err: str, roots: tuple[Path, ...]) -> str:
    if _needs_network(err):
        return "needs the network (a remote chart repository, registry or go-getter source)"
    lines = [ln for ln in err.splitlines() if ln.strip() and "exit status" not in ln.lower()]
    return normalise(first_error("\n".join(lines)), *roots)


def local_releases(out: Path) -> list[str]:
    """The releases of the written spec whose chart is a directory (./, ../ or absolute)."""
    try:
        spec: Any = yaml.safe_load((out / "deployer.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return []
    releases = spec.get("releases") if isinstance(spec, dict) else None
    return sorted(
        str(r["name"])
        for r in releases or []
        if isinstance(r, dict) and str(r.get("chart", "")).startswith((".", "/")) and "name" in r
    )


def _pair(
    state: Path,
    out: Path,
    env_name: str,
    env: dict[str, str],
    tools: argparse.Namespace,
    *,
    select: list[str],
) -> tuple[int, str, int, str, list[str], int]:
    cwd = state if state.is_dir() else state.parent
    hf = run(
        [
            tools.helmfile,
            "--helm-binary",
            tools.helm,
            "-f",
            state,
            "-e",
            env_name,
            "template",
            "--skip-deps",
            *select,
        ],
        cwd,
        env,
        tools.timeout,
    )
    dp = run(
        [tools.deployer, "template", "-e", env_name, "--no-color", *select],
        out,
        {**env, "DEPLOYER_HELM": str(tools.helm)},
        tools.timeout,
    )
    want = objects(hf.out)
    diffs = compare(want, objects(dp.out)) if hf.code == 0 and dp.code == 0 else []
    return hf.code, hf.err, dp.code, dp.err, diffs, sum(len(v) for v in want.values())


def _verdict(diffs: list[str], count: int, scope: str) -> tuple[str, str]:
    if not diffs:
        return "equal" + scope, f"{count} objects"
    if all("placeholder-" in d and d.startswith("differs ") for d in diffs):
        # Only values the import turned into ${VAR} differ (set to placeholders here): not a loss.
        return "equal but for variables" + scope, "; ".join(diffs[:2])
    more = f"; and {len(diffs) - 3} more" if len(diffs) > 3 else ""
    return "differs" + scope, "; ".join(diffs[:3]) + more


def render_one(
    state: Path,
    out: Path,
    env_name: str,
    env: dict[str, str],
    tools: argparse.Namespace,
    *,
    roots: tuple[Path, ...],
) -> tuple[str, str, str]:
    """(environment, verdict, detail): equal, differs (what), or why the two cannot both render."""
    hf_code, hf_err, dp_code, dp_err, diffs, count = _pair(state, out, env_name, env, tools, select=[])
    if hf_code == 0 and dp_code == 0:
        return (env_name, *_verdict(diffs, count, ""))
    local = local_releases(out)
    if hf_code != 0 and local:
        results = [_pair(state, out, env_name, env, tools, select=["-l", f"name={r}"]) for r in local]
        both = [r for r in results if r[0] == 0 and r[2] == 0]
        if both:
            found = [d for r in both for d in r[4]]
            scope = f" (local-chart releases: {len(both)} of {len(local)})"
            return (env_name, *_verdict(found, sum(r[5] for r in both), scope))
    if hf_code != 0:
        return env_name, "helmfile cannot render offline", _failure(hf_err, roots)
    return env_name, "deployer cannot render", _failure(dp_err, roots)
