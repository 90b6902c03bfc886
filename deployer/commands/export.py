"""`deployer export flux -e ENV`: the environment as Flux objects (deployer/flux.py), for pull mode."""

from __future__ import annotations

import argparse
import os
import re
import stat
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from deployer.commands.common import create_output_dir, output_dir, project
from deployer.desired import resolve
from deployer.errors import UsageError
from deployer.flux import VALUES_KEY, FluxOptions, GitSource, export_flux
from deployer.hooks import declared
from deployer.merge import merge_layers
from deployer.project import DesiredRelease, Project
from deployer.render import dump_values
from deployer.yamlsource import HelmDumper

SECRET_WARNING = (
    "warning: {path} holds sensitive values in clear: do not commit it as it is; encrypt it (e.g. with "
    "sops, which Flux's kustomize-controller decrypts) or create the Secret(s) in the cluster yourself"
)


# Flux's own pattern for every `interval` (the CRDs' OpenAPI schema): a Go duration.
INTERVAL = re.compile(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$")


def export(args: argparse.Namespace) -> int:
    if not INTERVAL.match(args.interval):
        raise UsageError(
            f"--interval '{args.interval}' is not a duration Flux accepts",
            hint="write a Go duration such as 10m, 1h or 1m30s",
        )
    out = output_dir(args.output_dir) if args.output_dir else None  # before any work
    proj = project(args)
    releases = resolve(proj, args.environment)
    values = {r.key: merge_layers(list(r.layers)).values for r in releases if r.installed}
    git = (
        _git_source(proj, releases, args)
        if any(r.installed and r.chart.kind == "local" for r in releases)
        else None
    )
    options = FluxOptions(
        project=proj.name,
        environment=args.environment,
        namespace=args.namespace,
        interval=args.interval,
        git=git,
    )
    result = export_flux(releases, values, options)
    secrets = [_secret_text(s) for s in result.secrets]
    if out is not None:
        create_output_dir(out)
        for obj in result.objects:
            (out / file_name(obj)).write_text(dump_objects([obj]))
        if secrets:
            secret_dir = out / "secrets"
            secret_dir.mkdir(exist_ok=True)
            (secret_dir / ".gitignore").write_text("# sensitive values in clear: never commit these\n*\n")
            for obj in secrets:
                _write_private(secret_dir / file_name(obj), dump_objects([obj]))
            print(SECRET_WARNING.format(path=f"{secret_dir}{os.sep}"), file=sys.stderr)
    elif secrets and not args.secrets_file:
        names = ", ".join(r for r in sorted(_with_secrets(result.secrets)))
        raise UsageError(
            f"values marked sensitive ({names}) go to Secrets, which are not written to stdout",
            hint="pass --secrets-file FILE (or --output-dir DIR); nothing was written",
        )
    if secrets and args.secrets_file:  # first: if it cannot be written, nothing else is either
        _write_private(Path(args.secrets_file), dump_objects(secrets))
        print(SECRET_WARNING.format(path=args.secrets_file), file=sys.stderr)
    if out is None:
        sys.stdout.write(dump_objects(result.objects))
    for key in result.omitted:
        print(f"export: {key} is not installed in '{args.environment}': omitted", file=sys.stderr)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    by_key = declared(proj)[1]
    for key in sorted(r.key for r in releases if r.installed and by_key.get(r.key)):
        where = ", ".join(h.source for h in by_key[key])
        print(f"warning: {key}: hooks ({where}) are not exported: Flux runs no commands", file=sys.stderr)
    return 0


def _git_source(proj: Project, releases: Sequence[DesiredRelease], args: argparse.Namespace) -> GitSource:
    import git

    try:
        repo = git.Repo(proj.root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        repo = None
    url = args.git_url
    if url is None:
        remotes = {r.name: r for r in repo.remotes} if repo is not None else {}
        if "origin" not in remotes:
            raise UsageError(
                "local charts are exported from a GitRepository, and this spec's repository has no "
                "'origin' remote",
                hint="pass --git-url URL (the URL Flux clones, http(s):// or ssh://)",
            )
        url = remotes["origin"].url
    ref = args.git_ref
    if ref is None:
        if repo is None or repo.head.is_detached:
            raise UsageError(
                "no branch is checked out", hint="pass --git-ref BRANCH (or refs/..., or a commit)"
            )
        ref = repo.active_branch.name
    top = Path(repo.working_tree_dir).resolve() if repo is not None else proj.root  # type: ignore[arg-type]
    paths: dict[str, str] = {}
    for r in releases:
        if r.chart.kind != "local":
            continue
        try:
            paths[r.chart.ref] = "./" + Path(r.chart.ref).relative_to(top).as_posix()
        except ValueError:
            raise UsageError(
                f"chart {r.chart.ref} of {r.key} is outside the Git repository {top}",
                hint="Flux reads local charts from the repository: move the chart into it",
                mark=r.mark,
            ) from None
    return GitSource(url=url, ref=ref, paths=paths)


def _secret_text(secret: Mapping[str, Any]) -> dict[str, Any]:
    return {**secret, "stringData": {VALUES_KEY: dump_values(secret["stringData"][VALUES_KEY])}}


def _with_secrets(secrets: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(s["metadata"]["name"]) for s in secrets]


def file_name(obj: Mapping[str, Any]) -> str:
    return f"{str(obj['kind']).lower()}-{obj['metadata']['name']}.yaml"


class _Dumper(HelmDumper):
    """HelmDumper (kubectl and Flux read YAML 1.1 like helm: `y` must stay the string "y"), with
    multi-line strings (a Secret's values.yaml) as literal blocks where YAML allows one."""


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_Dumper.add_representer(str, _str)


def dump_objects(objects: Sequence[Mapping[str, Any]]) -> str:
    return "".join(
        "---\n"
        + yaml.dump(dict(obj), Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True)
        for obj in objects
    )


def _write_private(path: Path, text: str) -> None:
    """Write sensitive text to a file only its owner can read: a new file is created 0600, an
    existing regular file is made 0600 before it is emptied (a device such as /dev/null is written
    as it is)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}", hint="pick a writable path") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode):
            if stat.S_IMODE(info.st_mode) & 0o077:
                try:
                    os.fchmod(fd, 0o600)
                except OSError as exc:
                    raise UsageError(
                        f"cannot make {path} private (mode {stat.S_IMODE(info.st_mode):04o}): "
                        f"{exc.strerror}; nothing was written",
                        hint="remove the file or write the Secrets to a new path",
                    ) from None
            os.ftruncate(fd, 0)
        handle.write(text)
