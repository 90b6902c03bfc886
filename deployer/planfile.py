"""Saved plans: `diff --save-plan FILE` writes what was planned as digests; `apply --plan FILE` plans
again and applies only if the fresh plan is the saved one (docs/diff.md, "Saved plans").

A plan file holds, per release, the action, the chart (name, version, reference and content digest),
the observed revision and status it was planned against, the release's settings (helm's flags, as
written: no values), and HMAC-SHA256 digests, keyed by a random salt stored in the file, of the exact
merged values, of the rendered manifest and hooks, and of the commands its `hooks:` run. It never
holds a value, and no unsalted hash of one: a guess at a secret cannot be checked against it without
the salt and a full values document. The file's own `digest` (SHA-256 of its canonical JSON) detects
an edit; it is not a signature (whoever can write the file can recompute it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployer.errors import UsageError
from deployer.observed import ObservedRelease
from deployer.plan import CHANGING, PRUNE, DesiredState, Plan, canonical
from deployer.project import DesiredRelease

FORMAT = "deployer-plan"
FORMAT_VERSION = 2  # 2: settings and hooksDigest per release
if TYPE_CHECKING:
    from deployer.charts import ChartStore
    from deployer.planner import EnvironmentPlan

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Header:
    """What the plan was made of and against, besides its releases."""

    project: str
    environment: str
    spec_commit: str
    deployer_version: str
    helm_version: str
    kube_context: str
    kube_server: str
    live: bool
    selectors: Sequence[str]


@dataclass(frozen=True)
class SavedPlan:
    path: Path
    doc: Mapping[str, Any]

    @property
    def salt(self) -> bytes:
        return bytes.fromhex(str(self.doc["salt"]))

    @property
    def live(self) -> bool:
        return bool(self.doc.get("live"))

    @property
    def releases(self) -> dict[str, Mapping[str, Any]]:
        return {str(r["key"]): r for r in self.doc["releases"]}

    def has_changes(self, *, prune: bool) -> bool:
        """Whether applying it changes anything (prunes only with apply --prune, as for any apply)."""
        actions = [str(r["action"]) for r in self.doc["releases"]]
        return any((a in CHANGING and (prune or a != PRUNE)) or a == "blocked" for a in actions)


def parse_duration(text: str) -> timedelta:
    """`90m`, `12h`, `7d`, `1d12h`, `2w` (s, m, h, d, w)."""
    parts = re.findall(r"(\d+)([smhdw])", text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise UsageError(
            f"--plan-max-age '{text}' is not a duration", hint="write it as 90m, 12h, 7d or 1d12h"
        )
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))


def keyed_digest(salt: bytes, data: Any) -> str:
    """HMAC-SHA256 of `data`'s canonical JSON, keyed by the plan's salt."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "hmac-sha256:" + hmac.new(salt, text.encode(), hashlib.sha256).hexdigest()


def _content_digest(doc: Mapping[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k != "digest"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def release_records(
    plan: Plan,
    states: Sequence[DesiredState],
    observed: Mapping[str, ObservedRelease],
    *,
    chart_digests: Mapping[str, str],
    root: Path,
    salt: bytes,
) -> dict[str, dict[str, Any]]:
    """What is compared of each release of `plan`: the same function writes and checks a plan.
    `chart_digests`: release key -> content digest of the chart it renders."""
    by_key = {s.release.key: s for s in states}
    out = {}
    for rel in plan.releases:
        state = by_key.get(rel.key)
        seen = observed.get(rel.key)
        record: dict[str, Any] = {
            "key": rel.key,
            "action": str(rel.action),
            "chart": {
                "name": rel.chart,
                "version": rel.version_after or rel.version_before or "",
                "ref": _chart_ref(state, root),
                "digest": chart_digests.get(rel.key, ""),
            },
            "observed": None if seen is None else {"revision": seen.revision, "status": str(seen.status)},
            "valuesDigest": "",
            "manifestDigest": "",
            "settings": {},
            # what apply runs around it (a command may hold a secret: a digest, as for values)
            "hooksDigest": keyed_digest(
                salt, [[list(h.events), list(h.command), h.timeout, h.show_logs] for h in rel.commands]
            ),
        }
        if state is not None:
            record["valuesDigest"] = keyed_digest(salt, canonical(state.values))
            record["manifestDigest"] = keyed_digest(salt, [state.manifest, state.hooks])
            record["settings"] = settings_of(state.release)
        out[rel.key] = record
    return out


def settings_of(release: DesiredRelease) -> dict[str, Any]:
    """The release's settings that change how helm runs it (its flags), by their spec names."""
    from deployer.releaseflags import FIELDS

    return {
        "timeout": release.timeout,
        "wait": release.wait,
        "atomic": release.atomic,
        "crds": release.crds,
        **{name: getattr(release.flags, attr) for name, attr in FIELDS.items()},
    }


def _chart_ref(state: DesiredState | None, root: Path) -> str:
    if state is None:
        return ""
    ref = state.release.chart
    if ref.kind == "local":  # relative: the merge pipeline's checkout is elsewhere
        path = Path(ref.ref)
        return "./" + str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    return f"{ref.ref}@{ref.version}" if ref.version else ref.ref


def build(
    header: Header, records: Mapping[str, Mapping[str, Any]], salt: bytes, now: datetime
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": FORMAT,
        "formatVersion": FORMAT_VERSION,
        "project": header.project,
        "environment": header.environment,
        "createdAt": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "specCommit": header.spec_commit,
        "deployerVersion": header.deployer_version,
        "helmVersion": header.helm_version,
        "kube": {"context": header.kube_context, "server": header.kube_server},
        "live": header.live,
        "selectors": list(header.selectors),
        "salt": salt.hex(),
        "releases": [dict(records[k]) for k in sorted(records)],
    }
    doc["digest"] = _content_digest(doc)
    return doc


def new_salt() -> bytes:
    return secrets.token_bytes(32)


def check_writable(path: Path) -> None:
    parent = path.absolute().parent
    if path.is_dir() or not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(
            f"cannot write the plan to {path}: {parent} is not a directory you can write to"
            if not path.is_dir()
            else f"cannot write the plan to {path}: it is a directory",
            hint="give --save-plan a file path in a writable directory; nothing was planned",
        )


def write(path: Path, doc: Mapping[str, Any]) -> None:
    """Written whole or not at all (a temporary file renamed over it)."""
    target = path.absolute()
    try:
        fd, tmp = tempfile.mkstemp(prefix=".plan-", dir=target.parent)
    except OSError as exc:
        raise UsageError(
            f"cannot write the plan to {path}: {exc.strerror}", hint="pick a path in a writable directory"
        ) from None
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)


def read(path: Path) -> SavedPlan:
    """The plan in `path`, checked to be a whole, unedited plan file of this format."""
    hint = "make a plan with `deployer diff -e ENV --save-plan FILE`"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UsageError(f"cannot read the plan file {path}: {why}", hint=hint) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{path}:{exc.lineno}:{exc.colno}: not a deployer plan file: invalid JSON ({exc.msg})", hint=hint
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UsageError(f'{path} is not a deployer plan file (no "format": "{FORMAT}")', hint=hint)
    if doc.get("formatVersion") != FORMAT_VERSION:
        raise UsageError(
            f"{path} is a plan file of format version {doc.get('formatVersion')!r}; this deployer reads "
            f"version {FORMAT_VERSION}",
            hint="make the plan again with this deployer (deployer diff --save-plan)",
        )
    if doc.get("digest") != _content_digest(doc):
        raise UsageError(
            f"{path} was changed after deployer wrote it (its digest does not match its content)",
            hint="a saved plan is checked, not trusted: make a new one with deployer diff --save-plan",
        )
    problem = _shape_problem(doc)
    if problem:
        raise UsageError(f"{path} is not a valid plan file: {problem}", hint=hint)
    return SavedPlan(path, doc)


def _shape_problem(doc: Mapping[str, Any]) -> str:
    for name in ("project", "environment", "createdAt", "salt"):
        if not isinstance(doc.get(name), str):
            return f"'{name}' is missing or not a string"
    try:
        bytes.fromhex(doc["salt"])
        datetime.strptime(doc["createdAt"], "%Y-%m-%dT%H:%M:%SZ")
    except ValueError as exc:
        return str(exc)
    releases = doc.get("releases")
    if not isinstance(releases, list) or not all(
        isinstance(r, dict) and isinstance(r.get("key"), str) and isinstance(r.get("action"), str)
        for r in releases
    ):
        return "'releases' is not a list of releases with a key and an action"
    return ""


def check_header(
    saved: SavedPlan,
    *,
    project: str,
    environment: str,
    server: str,
    selectors: Sequence[str],
    max_age: timedelta,
    now: datetime,
) -> None:
    """Refuse a plan made for another project, environment, cluster or selection, or too old."""
    doc, path = saved.doc, saved.path
    hint = f"make a new plan: deployer diff -e {environment} --save-plan {path}"
    if doc["project"] != project:
        raise UsageError(f"{path} is a plan for project '{doc['project']}', not '{project}'", hint=hint)
    if doc["environment"] != environment:
        raise UsageError(
            f"{path} is a plan for environment '{doc['environment']}', not '{environment}'",
            hint=f"apply it with -e {doc['environment']}, or {hint}",
        )
    planned_on = str((doc.get("kube") or {}).get("server", ""))
    if planned_on and planned_on != server:
        raise UsageError(
            f"{path} was planned against the cluster at {planned_on}; this run targets {server}", hint=hint
        )
    if list(doc.get("selectors") or []) != list(selectors):
        shown = " ".join(f"-l {s}" for s in doc.get("selectors") or []) or "no -l selector"
        raise UsageError(f"{path} was planned with {shown}: apply it with the same selection", hint=hint)
    created = datetime.strptime(doc["createdAt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    age = now - created
    if age > max_age:
        raise UsageError(
            f"{path} was made {_span(age)} ago ({doc['createdAt']}), "
            f"more than --plan-max-age {_span(max_age)}",
            hint=f"{hint}, or raise --plan-max-age",
        )


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    return "".join(parts) or f"{seconds}s"


def moved(
    saved: SavedPlan, fresh: Mapping[str, Mapping[str, Any]], observed: Mapping[str, ObservedRelease]
) -> list[str]:
    """Per release, what differs between the saved plan and the fresh one (empty: the same plan)."""
    before = saved.releases
    out = []
    for key in sorted(set(before) | set(fresh)):
        if key not in fresh:
            out.append(f"{key}: release removed since the plan")
        elif key not in before:
            out.append(f"{key}: release added since the plan")
        else:
            out += [f"{key}: {why}" for why in _release_moved(before[key], fresh[key], observed.get(key))]
    return out


def _release_moved(old: Mapping[str, Any], new: Mapping[str, Any], seen: ObservedRelease | None) -> list[str]:
    out = []
    was, now = old.get("observed"), new.get("observed")
    if was != now:
        out.append(_revision_moved(was, now, seen))
    if old.get("action") != new.get("action"):
        out.append(f"planned to {old.get('action')}, would now {new.get('action')}")
    a, b = old.get("chart") or {}, new.get("chart") or {}
    if (a.get("name"), a.get("version")) != (b.get("name"), b.get("version")):
        out.append(f"chart {a.get('name')} {a.get('version')} is now {b.get('name')} {b.get('version')}")
    elif a.get("digest") != b.get("digest"):
        out.append(f"chart {a.get('name')} {a.get('version')} digest changed")
    s, t = old.get("settings") or {}, new.get("settings") or {}
    changed = [
        f"{k} {json.dumps(s.get(k))} -> {json.dumps(t.get(k))}"
        for k in sorted({*s, *t})
        if s.get(k) != t.get(k)
    ]
    if changed:
        out.append(f"settings changed: {', '.join(changed)}")
    if old.get("hooksDigest") != new.get("hooksDigest"):
        out.append("its hooks changed (the commands apply runs around it)")
    if old.get("valuesDigest") != new.get("valuesDigest"):
        out.append("values differ")
    elif a == b and old.get("manifestDigest") != new.get("manifestDigest"):
        # Same chart, same values: the render read the cluster (lookup, its API or Kubernetes version).
        out.append("rendered manifest differs (same chart and values: the render depends on the cluster)")
    return out


def _revision_moved(was: Any, now: Any, seen: ObservedRelease | None) -> str:
    if not isinstance(was, dict):
        return f"not installed when planned, now at revision {seen.revision if seen else '?'}{_by(seen)}"
    if not isinstance(now, dict):
        return f"revision {was.get('revision')} is gone (uninstalled since the plan)"
    if was.get("revision") != now.get("revision"):
        return f"revision {was.get('revision')} is now {now.get('revision')}{_by(seen)}"
    return f"revision {was.get('revision')} was {was.get('status')}, is now {now.get('status')}"


def _by(seen: ObservedRelease | None) -> str:
    if seen is None:
        return ""
    # The description, not the run label: helm carries a release's labels over to an upgrade made by
    # hand, while its description is that upgrade's own ("Upgrade complete").
    found = re.match(r"deployer run (\S+)", seen.description)
    who = f"by run {found[1]}" if found else f"outside deployer: {seen.description or 'no description'}"
    return f" (applied at {seen.deployed_at or 'an unknown time'} {who})"


def chart_digests(states: Sequence[DesiredState], charts: ChartStore) -> dict[str, str]:
    """Release key -> content digest of the chart it renders (ChartStore keeps each once per run)."""
    out = {}
    for state in states:
        ref = state.release.chart
        path = Path(ref.ref) if ref.kind == "local" else charts.cached_path(ref)
        if state.release.installed and path.exists():
            out[state.release.key] = charts.digest(path)
    return out


def records_of(
    plan: Plan, planned: EnvironmentPlan, charts: ChartStore, root: Path, salt: bytes
) -> dict[str, dict[str, Any]]:
    digests = chart_digests(planned.states, charts)
    return release_records(
        plan, planned.states, planned.observed, chart_digests=digests, root=root, salt=salt
    )
