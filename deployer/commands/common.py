"""What several verbs share: loading the spec, selectors, command-line value layers, progress."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deployer.errors import SpecError, UsageError
from deployer.merge import Layer, Origin
from deployer.project import Project, load_project
from deployer.setvalues import FLAG_ORDER, Assignment, parse_flags
from deployer.yamlsource import load_file


def project(args: argparse.Namespace) -> Project:
    return load_project(Path(args.file) if args.file else Path.cwd(), sops=getattr(args, "sops", None))


def selectors(raw: list[str]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for text in raw:
        pairs: dict[str, str] = {}
        for part in text.split(","):
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise UsageError(f"invalid selector '{text}'", hint="write -l key=value[,key=value]")
            pairs[key.strip()] = value.strip()
        out.append(pairs)
    return out


def cli_layers(args: argparse.Namespace) -> list[Layer | Assignment]:
    """The --values files, then the --set family in helm's order (resolve applies them per release)."""
    layers: list[Layer | Assignment] = [_values_layer(Path(f)) for f in getattr(args, "values", [])]
    flags = {flag: getattr(args, flag[2:].replace("-", "_"), []) for flag in FLAG_ORDER}
    layers.extend(parse_flags(flags, _read_text))
    return layers


def plan_options(args: argparse.Namespace) -> Any:
    """The core's PlanOptions from a verb's arguments (diff, apply, sync)."""
    from deployer.cache import cache_dir
    from deployer.planner import PlanOptions

    return PlanOptions(
        environment=args.environment,
        selectors=selectors(args.selector),
        extra_layers=cli_layers(args),
        concurrency=args.concurrency,
        kube_version=args.kube_version,
        show_secrets=getattr(args, "show_secrets", False),
        everything=args.verb == "sync",
        no_ignore=getattr(args, "no_ignore", False),
        render_cache=cache_dir(os.environ) / "renders",
    )


def _values_layer(file: Path) -> Layer:
    doc = load_file(file)
    if not isinstance(doc.data, dict):
        raise SpecError("a --values file must be a mapping of values", mark=doc.mark(()))
    origins = {
        tuple(str(p) for p in path): Origin(str(mark))
        for path, mark in doc.value_marks.items()
        if path and all(isinstance(p, str) for p in path)
    }
    return Layer(values=doc.data, origins=origins)


def _read_text(path: str) -> str:
    # --set-file, as helm reads it: relative to the current directory, bytes as they are (no newline
    # translation).
    return Path(path).read_bytes().decode("utf-8")


def progress() -> Callable[[str], None]:
    """Progress lines on stderr; timestamped when stderr is not a terminal (CI logs)."""
    plain = not sys.stderr.isatty()
    start = time.monotonic()

    def log(message: str) -> None:
        stamp = f"[{time.monotonic() - start:6.1f}s] " if plain else ""
        print(f"{stamp}{message}", file=sys.stderr, flush=True)

    return log


def helm_and_charts(args: argparse.Namespace, proj: Project, log: Callable[[str], None]) -> tuple[Any, Any]:
    from deployer.cache import cache_dir
    from deployer.charts import ChartStore
    from deployer.helm import locate
    from deployer.repos import RepoManager

    cache = cache_dir(os.environ)
    helm = locate(args.helm, os.environ, cache / "helm")
    repos = RepoManager(helm, os.environ, refresh=getattr(args, "refresh", False), log=log)
    charts = ChartStore(helm, repos, cache, {r.name: r for r in proj.spec.repositories}, log=log)
    return helm, charts


def output_dir(text: str) -> Path:
    """The --output-dir to write into, checked before any work: an existing directory, or a path
    that can be created under one this user may write to."""
    path = Path(text)
    if path.exists():
        if not path.is_dir():
            raise UsageError(f"--output-dir {text} exists and is not a directory", hint="pick a directory")
        if not os.access(path, os.W_OK):
            raise UsageError(f"--output-dir {text} is not writable", hint="pick a directory you can write to")
        return path
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(
            f"--output-dir {text} cannot be created: {parent} is not a directory you can write to",
            hint="pick a directory you can write to",
        )
    return path


def create_output_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot create --output-dir {path}: {exc.strerror}", hint="pick another path"
        ) from None
