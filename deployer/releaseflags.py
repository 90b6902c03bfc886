"""Helm's release flags, typed: which spec field becomes which helm argument, per helm major and verb.

Each flag goes to exactly the helm commands that accept it (checked against both pinned majors'
`--help` in tests/test_release_flags.py). Flags that change what a render or a plan means get a
plan note, so a reviewer sees them before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ReleaseFlags:
    create_namespace: bool = True
    wait_for_jobs: bool = False
    cleanup_on_fail: bool = False
    history_max: int | None = None
    force: bool = False
    disable_hooks: bool = False
    skip_schema_validation: bool = False
    take_ownership: bool = False


# Spec key (camelCase, as written) -> ReleaseFlags attribute.
FIELDS = {
    "createNamespace": "create_namespace",
    "waitForJobs": "wait_for_jobs",
    "cleanupOnFail": "cleanup_on_fail",
    "historyMax": "history_max",
    "force": "force",
    "disableHooks": "disable_hooks",
    "skipSchemaValidation": "skip_schema_validation",
    "takeOwnership": "take_ownership",
}


def resolve_flags(release: Any, defaults: Any) -> ReleaseFlags:
    """The release's flags: its own setting, else the defaults', else helm's behaviour (as today)."""
    chosen: dict[str, Any] = {}
    for attr in FIELDS.values():
        value = getattr(release, attr)
        if value is None:
            value = getattr(defaults, attr)
        if value is not None:
            chosen[attr] = value
    return ReleaseFlags(**chosen)


def upgrade_args(flags: ReleaseFlags, major: int, *, wait: bool) -> list[str]:
    """For `helm upgrade --install`."""
    args = ["--create-namespace"] if flags.create_namespace else []
    args += _shared(flags, major, wait=wait)
    if flags.skip_schema_validation:
        args.append("--skip-schema-validation")
    if flags.take_ownership:
        args.append("--take-ownership")
    return args


def rollback_args(flags: ReleaseFlags, major: int) -> list[str]:
    """For `helm rollback` (deployer's --rollback-on-failure, `deployer rollback`, --recover)."""
    return _shared(flags, major, wait=True)


def _shared(flags: ReleaseFlags, major: int, *, wait: bool) -> list[str]:
    """The flags `helm upgrade` and `helm rollback` both take, under the same names."""
    args: list[str] = []
    if flags.wait_for_jobs and wait:
        args.append("--wait-for-jobs")
    if flags.cleanup_on_fail:
        args.append("--cleanup-on-fail")
    if flags.history_max is not None:
        args += ["--history-max", str(flags.history_max)]
    args += _force(flags, major)
    if flags.disable_hooks:
        args.append("--no-hooks")
    return args


def _force(flags: ReleaseFlags, major: int) -> list[str]:
    """helm 3's --force; helm 4 renamed it --force-replace (its --force is a deprecated alias) and
    refuses it with server-side apply ("cannot use server-side apply and force replace together"),
    its default for a new release: a forced release is applied client-side."""
    if not flags.force:
        return []
    return ["--force"] if major < 4 else ["--force-replace", "--server-side=false"]


def uninstall_args(flags: ReleaseFlags) -> list[str]:
    return ["--no-hooks"] if flags.disable_hooks else []


def template_args(flags: ReleaseFlags) -> list[str]:
    """For `helm template`: only what changes whether it renders at all. Hooks are rendered even with
    disableHooks: helm stores them in the release all the same (it only does not run them)."""
    return ["--skip-schema-validation"] if flags.skip_schema_validation else []


def plan_notes(flags: ReleaseFlags) -> list[str]:
    """What a reviewer must know about how helm will apply this release."""
    notes = []
    if flags.disable_hooks:
        notes.append(
            "disableHooks: helm will not run this chart's hooks (install, upgrade, rollback, uninstall)"
        )
    if flags.take_ownership:
        notes.append(
            "takeOwnership: helm adopts objects of the same kind and name that exist without this "
            "release's ownership labels"
        )
    if flags.force:
        notes.append(
            "force: objects whose change the server refuses are deleted and recreated (helm --force / "
            "--force-replace)"
        )
    if not flags.create_namespace:
        notes.append("createNamespace: false: the release's namespace must exist")
    return notes
