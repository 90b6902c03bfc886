"""Release hooks: the user's commands that apply, sync, destroy and rollback run around their changes.

Declared under `hooks:` in `defaults` and on releases (a release's hooks run after those of
`defaults`: they add to them, as `sensitive` does). Events:
- presync / postsync: before / after a release's install or upgrade (only when the plan changes it;
  a rollback of the release counts as one);
- preuninstall / postuninstall: before / after its uninstall (destroy, prune, `installed: false`,
  and a rollback that uninstalls what the last run installed);
- preapply: once per run, before its first change (each distinct hook of `defaults` and of the
  selected releases once); cleanup: once per run, after everything, whatever happened. A run with
  nothing to change runs no hook at all.

Only apply, sync, destroy and rollback run hooks; diff lists those apply would run (the plan's
`commands`), and no other verb ever starts one: a pull-request plan runs on the pull request's own
files, and a plan that executed commands from them would hand the CI job to whoever opened it.

Which hooks run when is decided here, purely (the plan carries each release's hooks and the run's;
`due` and `due_run` say which apply runs); deployer/hookrun.py runs them.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deployer.plan import Plan, ReleasePlan
    from deployer.project import Project

PREAPPLY, PRESYNC, POSTSYNC, PREUNINSTALL, POSTUNINSTALL, CLEANUP = (
    "preapply",
    "presync",
    "postsync",
    "preuninstall",
    "postuninstall",
    "cleanup",
)
RUN_EVENTS = (PREAPPLY, CLEANUP)
SYNC = (PRESYNC, POSTSYNC)
UNINSTALL = (PREUNINSTALL, POSTUNINSTALL)
# The events around each plan action; blocked and noop releases run none.
AROUND = {"install": SYNC, "upgrade": SYNC, "uninstall": UNINSTALL, "prune": UNINSTALL}


@dataclass(frozen=True)
class Hook:
    events: tuple[str, ...]
    command: tuple[str, ...]
    timeout: int
    show_logs: bool
    source: str  # file:line:column of its entry in the spec

    @property
    def text(self) -> str:
        return shlex.join(self.command)

    @property
    def identity(self) -> tuple[tuple[str, ...], int, bool]:
        """What makes two run hooks (preapply, cleanup) the same one, to run once."""
        return self.command, self.timeout, self.show_logs


def _hooks(declared: Iterable[Any] | None, project: Project, at: tuple[str | int, ...]) -> list[Hook]:
    return [
        Hook(
            events=tuple(h.events),
            command=tuple(h.command),
            timeout=h.timeout,
            show_logs=h.show_logs,
            source=str(project.doc.mark((*at, j))),
        )
        for j, h in enumerate(declared or [])
    ]


def declared(project: Project) -> tuple[tuple[Hook, ...], dict[str, tuple[Hook, ...]]]:
    """The hooks of `defaults`, and every release's (those of defaults, then its own) by key, in
    spec order."""
    from deployer.project import release_key

    defaults = _hooks(project.spec.defaults.hooks, project, ("defaults", "hooks"))
    by_key = {
        release_key(project, rel): (*defaults, *_hooks(rel.hooks, project, ("releases", i, "hooks")))
        for i, rel in enumerate(project.spec.releases)
    }
    return tuple(defaults), by_key


def attach(plan: Plan, project: Project) -> Plan:
    """The plan with each release's hooks (a release that left the spec: those of `defaults`) and
    the run's preapply and cleanup hooks (from defaults and the planned releases, each once)."""
    defaults, by_key = declared(project)
    releases = tuple(replace(r, commands=by_key.get(r.key, defaults)) for r in plan.releases)
    return replace(plan, releases=releases, commands=run_hooks(project, [r.key for r in plan.releases]))


def run_hooks(project: Project, keys: Iterable[str]) -> tuple[Hook, ...]:
    """The preapply and cleanup hooks of a run over the releases `keys`: those of defaults, then
    of each release in spec order, each distinct hook once."""
    defaults, by_key = declared(project)
    chosen = set(keys)
    run: dict[tuple[tuple[str, ...], int, bool], Hook] = {}
    for hook in (*defaults, *(h for k, hs in by_key.items() if k in chosen for h in hs)):
        if any(e in RUN_EVENTS for e in hook.events):
            run.setdefault(hook.identity, hook)
    return tuple(run.values())


def due(r: ReleasePlan) -> list[tuple[str, Hook]]:
    """(event, hook) of every hook apply runs for this release, in the order it runs them."""
    return [(event, h) for event in AROUND.get(r.action, ()) for h in r.commands if event in h.events]


def due_run(plan: Plan) -> list[tuple[str, Hook]]:
    """(event, hook) of the run's hooks, in order: none when nothing changes."""
    return in_order(plan.commands) if plan.has_changes else []


def in_order(hooks: Iterable[Hook]) -> list[tuple[str, Hook]]:
    """(event, hook) of run hooks: every preapply, then every cleanup."""
    listed = list(hooks)
    return [(event, h) for event in RUN_EVENTS for h in listed if event in h.events]


def listing(hook: Hook, redact: Callable[[str], str] = str) -> dict[str, Any]:
    """A hook in the JSON plan (the command masked like every other text)."""
    return {
        "command": [redact(a) for a in hook.command],
        "timeout": hook.timeout,
        "showLogs": hook.show_logs,
        "source": hook.source,
    }


def masks(redactors: Iterable[Callable[[str], str]]) -> Callable[[str], str]:
    """One redact function applying each of `redactors` (the secret texts of several releases)."""
    chain = list(redactors)

    def redact(text: str) -> str:
        for one in chain:
            text = one(text)
        return text

    return redact
