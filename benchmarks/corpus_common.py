"""What benchmarks/import_corpus.py and benchmarks/helmfile_snapshots.py share: the pinned tools, an
environment that reaches no network and no cluster, running a command, and rendered objects compared
by kind/namespace/name and content."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TOOLS = Path.home() / ".cache" / "deployer" / "tools"
HELMFILE = TOOLS / "helmfile-v1.8.0" / "helmfile"
HELM = TOOLS / "helm-v3.22.0" / "helm"
# A proxy on a port nothing listens on: helm and helmfile honour it, so nothing leaves the machine
# (loopback is exempted for the chart repositories and registries served here).
DEAD_PROXY = "http://127.0.0.1:9"

ObjectKey = tuple[str, str, str, str]


@dataclass(frozen=True)
class Proc:
    code: int
    out: str
    err: str


def deployer_binary(flag: str | None) -> Path:
    if flag:
        return Path(flag)
    beside = Path(sys.executable).parent / "deployer"
    found = str(beside) if beside.exists() else shutil.which("deployer")
    if not found:
        raise SystemExit("deployer not found: run tools/setup, or pass --deployer PATH")
    return Path(found)


def offline_env(
    home: Path, *, path_first: Path | None = None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A private helm home, no kubeconfig, every HTTP(S) request to a dead proxy but loopback's."""
    path = "/usr/local/bin:/usr/bin:/bin"
    return {
        "PATH": f"{path_first}:{path}" if path_first else path,
        "HOME": str(home),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
        "HELMFILE_CACHE_HOME": str(home / "helmfile-cache"),
        "KUBECONFIG": str(home / "no-kubeconfig"),
        "HTTP_PROXY": DEAD_PROXY,
        "HTTPS_PROXY": DEAD_PROXY,
        "http_proxy": DEAD_PROXY,
        "https_proxy": DEAD_PROXY,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "GIT_TERMINAL_PROMPT": "0",
        "NO_COLOR": "1",
        "LANG": "C.UTF-8",
        **(extra or {}),
    }


def run(cmd: Sequence[str | Path], cwd: Path, env: Mapping[str, str], timeout: float = 300) -> Proc:
    try:
        proc = subprocess.run(
            [str(c) for c in cmd],
            cwd=cwd,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return Proc(124, "", f"error: timed out after {timeout:.0f}s")
    return Proc(proc.returncode, proc.stdout, proc.stderr)


def _load(chunk: str) -> Any:
    """One YAML document of a render, tolerating helmfile's log lines after it."""
    lines = chunk.splitlines()
    while lines:
        try:
            return yaml.safe_load("\n".join(lines))
        except yaml.YAMLError:
            lines.pop()
    return None


def objects(text: str) -> dict[ObjectKey, list[Any]]:
    """Kubernetes objects of a render by (apiVersion, kind, namespace, name); a key seen twice keeps
    both (a render may legitimately repeat one, and a comparison must see it)."""
    out: dict[ObjectKey, list[Any]] = {}
    for chunk in re.split(r"(?m)^---\s*$", text):
        doc = _load(chunk)
        if not isinstance(doc, dict) or not doc:
            continue
        if "kind" not in doc or "apiVersion" not in doc:
            # A document that is no Kubernetes object (a chart may render one): keyed by its content.
            key = ("", "(not an object)", "", _short(doc))
            out.setdefault(key, []).append(doc)
            continue
        meta = doc.get("metadata") or {}
        key = (
            str(doc["apiVersion"]),
            str(doc["kind"]),
            str(meta.get("namespace") or ""),
            str(meta.get("name")),
        )
        out.setdefault(key, []).append(doc)
    return out


def _first_difference(want: Any, got: Any, path: str = "") -> str:
    if isinstance(want, dict) and isinstance(got, dict):
        for k in sorted(set(want) | set(got), key=str):
            if k not in got:
                return f"{path}.{k} missing"
            if k not in want:
                return f"{path}.{k} extra"
            if want[k] != got[k]:
                return _first_difference(want[k], got[k], f"{path}.{k}")
        return path or "."
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        for i, (w, g) in enumerate(zip(want, got, strict=True)):
            if w != g:
                return _first_difference(w, g, f"{path}[{i}]")
    return f"{path or '.'}: {_short(want)} -> {_short(got)}"


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True).strip()
    text = text.replace("\n", "\\n")
    if len(text) > 50 and "placeholder-" in text:  # where a variable the import wrote went in
        at = text.index("placeholder-")
        return f"...{text[max(0, at - 12) : at + 44]}..."
    return text if len(text) <= 50 else text[:47] + "..."


def key_text(key: ObjectKey) -> str:
    api, kind, ns, name = key
    return f"{kind}/{ns + '/' if ns else ''}{name} ({api})"


def compare(expected: Mapping[ObjectKey, list[Any]], actual: Mapping[ObjectKey, list[Any]]) -> list[str]:
    """Every difference between two renders, sorted: objects missing, extra, or different (with the
    first path that differs). Empty when they are the same objects."""
    diffs: list[str] = []
    for key in sorted(set(expected) | set(actual)):
        want, got = expected.get(key, []), actual.get(key, [])
        if not got:
            diffs.append(f"missing {key_text(key)}")
        elif not want:
            diffs.append(f"extra {key_text(key)}")
        elif len(want) != len(got):
            diffs.append(f"{key_text(key)}: {len(want)} expected, {len(got)} rendered")
        elif want != got:
            for w, g in zip(want, got, strict=True):
                if w != g:
                    diffs.append(f"differs {key_text(key)} at {_first_difference(w, g)}")
    return diffs


def first_error(text: str) -> str:
    """The first line that says what went wrong (an `error:` line, with the next one when it says
    nothing by itself; else the last non-empty line)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for i, ln in enumerate(lines):
        if ln.lower().startswith(("error:", "err:")) or " error:" in ln.lower():
            if len(ln) < 16 and i + 1 < len(lines):
                return f"{ln} {lines[i + 1]}"
            return ln
    for ln in lines:
        if any(word in ln.lower() for word in ("not found", "failed", "exec:", "no such")):
            return ln
    return lines[-1] if lines else "(no output)"


def normalise(text: str, *roots: Path) -> str:
    """A message without this run's paths, names or numbers, so that causes group across repos."""
    for root in roots:
        text = text.replace(str(root) + "/", "").replace(str(root), ".")
    # helmfile's own errors, as the import relays them: what helmfile said, without the preamble
    text = re.sub(
        r"^error: \S+: helmfile could not resolve \S+ for environment '[^']*': "
        r"(?:in \S+: )?(?:failed to read \S+: )?",
        "helmfile: ",
        text,
    )
    text = re.sub(r"/tmp/[^\s:'\"`]+", "<tmp>", text)
    text = re.sub(r"(['\"`])[^'\"`]{1,80}\1", r"\1…\1", text)
    text = re.sub(r"\[[^\]]{1,60}\]", "[…]", text)
    text = re.sub(r"\d+", "N", text)
    return text[:220]


def env_names(text: str) -> set[str]:
    """Environment variables a helmfile or values template reads (requiredEnv, env, expandenv)."""
    return set(re.findall(r"\b(?:requiredEnv|env)\s+\"([A-Za-z_][A-Za-z0-9_]*)\"", text))


def canary(name: str) -> str:
    """The value given to an environment variable the files read: if it shows up in a written file,
    a value from the process environment was written in clear."""
    return f"canary-{name.lower().replace('_', '-')}-7f3a"


def cleanup(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options both tools take: which binaries, how long a command may take, where to write."""
    parser.add_argument("--out", help="write the Markdown here (default: stdout)")
    parser.add_argument("--deployer", default=None, help="deployer binary (default: beside this python)")
    parser.add_argument(
        "--helmfile", type=Path, default=HELMFILE, help=f"helmfile binary (default: {HELMFILE})"
    )
    parser.add_argument("--helm", type=Path, default=HELM, help=f"helm binary (default: {HELM})")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per command (default: 300)")


def emit(text: str, out: str | None) -> int:
    if out:
        Path(out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0
