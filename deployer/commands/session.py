"""What the cluster-changing verbs share: target, context guard, confirmation, lock, helm flags."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deployer import cancel
from deployer.commands.common import helm_and_charts, progress, project
from deployer.errors import HelmError, UsageError
from deployer.project import Project
from deployer.runinfo import holder

if TYPE_CHECKING:
    from deployer.kube import KubeTarget
    from deployer.lock import Lock


@dataclass
class Session:
    proj: Project
    env: Any
    target: Any  # KubeTarget
    cluster: Any  # Cluster
    helm: Any  # Helm
    log: Callable[[str], None]


def kube_target(proj: Project, env_name: str, args: argparse.Namespace) -> KubeTarget:
    """The cluster an environment runs against: its `kubeContext` when --kube-context is not given
    (Helmfile's rule), --kube-context when it names the same context, else refused before anything."""
    from deployer.kube import resolve_target

    wanted = proj.environment(env_name).kube_context
    given = args.kube_context
    if wanted and given and given != wanted:
        raise UsageError(
            f"environment '{env_name}' must run against kube context '{wanted}', but --kube-context is "
            f"'{given}'",
            hint=f"drop --kube-context (the environment selects '{wanted}'); nothing was done",
        )
    if given or not wanted:
        return resolve_target(args.kubeconfig, given, os.environ)
    source = f"kubeContext of environment '{env_name}'"
    return resolve_target(args.kubeconfig, wanted, os.environ, context_source=source)


def confirm(protected: bool, args: argparse.Namespace, what: str) -> None:
    if not protected or args.yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(
            f"environment '{args.environment}' is protected: {args.verb} needs confirmation",
            hint=f"re-run with --yes after reviewing {what}",
        )
    answer = input(f"{args.verb} protected environment '{args.environment}'? Type 'yes': ")
    if answer.strip() != "yes":
        raise UsageError("not confirmed; nothing was changed")


def open_session(args: argparse.Namespace) -> Session:
    from deployer.kube import Cluster

    proj = project(args)
    env = proj.environment(args.environment)
    target = kube_target(proj, args.environment, args)
    log = progress()
    helm, _charts = helm_and_charts(args, proj, log)
    return Session(proj, env, target, Cluster(target), helm, log)


def step(key: str, done: str, action: Coroutine[Any, Any, None]) -> bool:
    """Run one helm action for a release and print its outcome line; False when it failed."""
    from deployer.hookrun import HookFailed

    try:
        asyncio.run(action)
    except HelmError as exc:
        why = f"{cancel.reason()}: " if cancel.received() else ""
        last = exc.stderr.splitlines()[-1] if exc.stderr else exc.message
        sys.stdout.write(f"{key}\tFAILED: {why}{last}\n")
        return False
    except HookFailed as exc:
        why = f"{cancel.reason()}: " if cancel.received() else ""
        sys.stdout.write(f"{key}\tFAILED: {why}{exc.detail}\n")
        return False
    sys.stdout.write(f"{key}\t{done}\n")
    return True


def refuse_flux_owned(owners: dict[str, str], args: argparse.Namespace) -> None:
    """Stop before touching a release a Flux HelmRelease manages (`owners`: release key -> HelmRelease),
    unless --take-over-from-flux: Flux would put back whatever deployer pushes."""
    if not owners or args.take_over_from_flux:
        return
    listed = ", ".join(f"{key} (HelmRelease {owner})" for key, owner in sorted(owners.items()))
    raise UsageError(
        f"{args.verb} refused: managed by Flux: {listed}; Flux would revert the change at its next reconcile",
        hint="change it through the Flux repository (deployer export flux), or suspend/delete the "
        "HelmRelease and re-run with --take-over-from-flux; nothing was changed",
    )


@contextmanager
def locked(session: Session, args: argparse.Namespace) -> Iterator[Lock]:
    """Hold the project's environment lock for the block. Check `lock.lost.is_set()` before starting
    each release and call `lock.check()` once the run is reported (see deployer/lock.py)."""
    from deployer.lock import environment_lock

    with environment_lock(
        session.cluster,
        namespace=session.proj.spec.lock.namespace,
        project=session.proj.name,
        environment=args.environment,
        identity=holder(os.environ),
        timeout=args.lock_timeout,
        log=session.log,
    ) as lock:
        yield lock
