"""Follow what the releases of a run wait for, and say why one failed.

While a release installs or upgrades, its objects that helm waits for (deployer/readiness.py) are
followed with one watch per kind and namespace, shared by every release of the run; `waiting(key)`
says what is not ready yet. When helm fails, `diagnose(key)` gives the objects that were not ready
(as last seen before helm's rollback deleted or replaced them), the Warning events about them, and
the last lines of the logs of containers that failed (read as soon as they failed: a rollback
deletes the pods, and their logs with them). Every text goes through the release's Redactor.

All reads go through deployer/kube.py; nothing here prints.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from deployer.errors import DeployerError
from deployer.kube import Cluster, interrupt
from deployer.observed import ObservedRelease
from deployer.plan import INSTALL, UPGRADE, DesiredState, Plan
from deployer.readiness import (
    Followed,
    NotReady,
    failed_containers,
    followed,
    merged,
    owns,
    pod_problem,
    problem,
)
from deployer.redact import NO_REDACTION, Redactor, for_release

log = logging.getLogger("deployer.rollout")

EVENT_LIMIT = 10  # Warning events kept per failed release, newest first
LOG_LINES = 20  # last lines kept of one container's log
LOG_CONTAINERS = 3  # containers whose logs are kept per failed release
OBJECT_LIMIT = 20  # not-ready objects listed per failed release
POD = ("v1", "pods")


@dataclass(frozen=True)
class EventLine:
    object: str  # `Pod api-7f9-x2`
    reason: str
    message: str
    count: int = 1
    others: int = 0  # further objects with the same reason and message

    def __str__(self) -> str:
        times = f" (x{self.count})" if self.count > 1 else ""
        more = f" (and {self.others} more)" if self.others else ""
        return f"{self.object}{more}: {self.reason}: {self.message}{times}"


@dataclass(frozen=True)
class LogTail:
    pod: str
    container: str
    previous: bool  # the log of the run before the current one (a crash-looping container)
    lines: tuple[str, ...] = ()
    error: str = ""  # why it could not be read

    @property
    def title(self) -> str:
        return f"pod {self.pod} container {self.container}" + (" (previous run)" if self.previous else "")


@dataclass(frozen=True)
class Diagnosis:
    objects: tuple[NotReady, ...] = ()
    events: tuple[EventLine, ...] = ()
    logs: tuple[LogTail, ...] = ()
    unreadable: str = ""  # why the cluster could not be read for it

    def __bool__(self) -> bool:
        return bool(self.objects or self.events or self.logs or self.unreadable)

    def lines(self) -> list[str]:
        """The diagnosis as plain text lines (unindented; the report indents them)."""
        out: list[str] = []
        if self.objects:
            out.append("not ready:")
            out += [f"  {o}" for o in self.objects]
        if self.events:
            out.append("warning events (newest first):")
            out += [f"  {e}" for e in self.events]
        for tail in self.logs:
            out.append(f"log of {tail.title}, last {len(tail.lines)} line(s):")
            out += [f"  | {line}" for line in tail.lines]
            if tail.error:
                out.append(f"  (not readable: {tail.error})")
        if self.unreadable:
            out.append(f"(the cluster could not be read for a diagnosis: {self.unreadable})")
        return out

    def redacted(self, redactor: Redactor) -> Diagnosis:
        r = redactor.redact
        return Diagnosis(
            objects=tuple(replace(o, reason=r(o.reason), message=r(o.message)) for o in self.objects),
            events=tuple(replace(e, message=r(e.message), reason=r(e.reason)) for e in self.events),
            logs=tuple(replace(t, lines=tuple(r(x) for x in t.lines), error=r(t.error)) for t in self.logs),
            unreadable=r(self.unreadable),
        )


@dataclass(frozen=True)
class Target:
    """A release a run installs or upgrades: its namespace, its rendered manifest with its hooks,
    and the redactor of its secret texts."""

    namespace: str
    manifest: str
    redactor: Redactor = NO_REDACTION
    load_balancers: bool = True  # whether helm waits for a LoadBalancer's address (helm 3)


def targets(
    plan: Plan,
    states: Iterable[DesiredState],
    observed: Mapping[str, ObservedRelease],
    *,
    helm_major: int,
) -> dict[str, Target]:
    """The releases a run installs or upgrades that helm waits for (`wait`, or hooks: helm waits
    for hook Jobs either way), each with the redactor of both sides of its plan."""
    changing = {r.key for r in plan.releases if r.action in (INSTALL, UPGRADE)}
    out = {}
    for state in states:
        rel = state.release
        if rel.key not in changing or not (rel.wait or state.hooks.strip()):
            continue
        before = observed.get(rel.key)
        sides = [(state.values, state.manifest + state.hooks)]
        if before is not None:
            sides.append((before.values, before.manifest + before.hooks))
        manifest = state.manifest + "\n---\n" + state.hooks
        out[rel.key] = Target(rel.namespace, manifest, for_release(rel.sensitive, sides), helm_major < 4)
    return out


@dataclass
class _Release:
    objects: list[Followed]
    redactor: Redactor
    running: bool = False
    logs: dict[tuple[str, str, bool], LogTail] = field(default_factory=dict)
    pods: set[tuple[str, str]] = field(default_factory=set)  # (namespace, name) of its pods seen in the run


class Rollout:
    """The shared watches of one run and what they saw."""

    def __init__(self, cluster: Cluster, targets: Mapping[str, Target]) -> None:
        self.cluster = cluster
        self.releases = {
            key: _Release(followed(t.manifest, t.namespace, load_balancers=t.load_balancers), t.redactor)
            for key, t in targets.items()
        }
        self.releases = {k: r for k, r in self.releases.items() if r.objects}
        self._lock = threading.Lock()
        # (apiVersion, plural, namespace) -> name -> the object as last seen without a deletion
        # timestamp (kept after it is deleted: a rollback deletes what the diagnosis shows).
        self._seen: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
        self._present: dict[tuple[str, str, str], set[str]] = {}
        self._watches: dict[tuple[str, str, str], _Watch] = {}

    # --- the run's side (execute.py) --------------------------------------------------------

    def begin(self, key: str) -> None:
        """Start following a release's objects (the watches it needs that are not running yet)."""
        release = self.releases.get(key)
        if release is None:
            return
        with self._lock:
            release.running = True
            collections = {o.collection for o in release.objects}
            collections |= {(*POD, o.namespace) for o in release.objects if o.pod_labels}
            for collection in sorted(collections - set(self._watches)):
                self._seen.setdefault(collection, {})
                self._present.setdefault(collection, set())
                watch = _Watch(self, collection)
                self._watches[collection] = watch
                watch.start()

    def end(self, key: str) -> None:
        if key in self.releases:
            self.releases[key].running = False

    def close(self) -> None:
        for watch in list(self._watches.values()):
            watch.stop()
        for watch in list(self._watches.values()):
            watch.join()

    def __enter__(self) -> Rollout:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def waiting(self, key: str) -> str:
        """What a running release waits for now ("" when nothing it follows is not ready)."""
        release = self.releases.get(key)
        if release is None:
            return ""
        with self._lock:
            problems = self._problems(release, present_only=True)
        return release.redactor.redact("; ".join(str(p) for p in problems))

    def diagnose(self, key: str) -> Diagnosis:
        """Why a release failed: blocking (it lists the Warning events of its namespaces)."""
        release = self.releases.get(key)
        if release is None:
            return Diagnosis()
        with self._lock:
            objects = self._problems(release, present_only=False)[:OBJECT_LIMIT]
            # Logs not read while the run went on, of pods that are still there to ask.
            pods = [
                self._seen[(*POD, p.namespace)][p.name]
                for p in objects
                if p.kind == "Pod" and p.name in self._present.get((*POD, p.namespace), set())
            ]
        unreadable = ""
        for pod in pods:
            self._read_logs(release, pod)
        try:
            events = self._events(release)
        except DeployerError as exc:
            events, unreadable = (), exc.message
        logs = tuple(t for t in release.logs.values() if t.lines or t.error)[:LOG_CONTAINERS]
        return Diagnosis(tuple(objects), events, logs, unreadable).redacted(release.redactor)

    # --- what was seen ----------------------------------------------------------------------

    def _problems(self, release: _Release, *, present_only: bool) -> list[NotReady]:
        out: list[NotReady] = []
        for obj in release.objects:
            seen = self._seen.get(obj.collection, {})
            live = seen.get(obj.name)
            if present_only and obj.name not in self._present.get(obj.collection, set()):
                live = None
            found = problem(obj, live) if live is not None else None  # not created yet: not a reason
            if found is not None:
                out.append(found)
            if not obj.pod_labels:
                continue
            pods = self._seen.get((*POD, obj.namespace), {})
            present = self._present.get((*POD, obj.namespace), set())
            for name in sorted(pods):
                if present_only and name not in present:
                    continue
                if owns(obj, pods[name]) and ((obj.namespace, name) in release.pods or name in present):
                    pod = pod_problem(pods[name])
                    if pod is not None:
                        out.append(pod)
        return merged(out)

    def _observe(self, collection: tuple[str, str, str], kind: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        name = str(meta.get("name", ""))
        with self._lock:
            if kind == "DELETED":
                self._present[collection].discard(name)
            else:
                self._present[collection].add(name)
                if not meta.get("deletionTimestamp"):
                    self._seen[collection][name] = obj
            if collection[:2] != POD:
                return
            mine = [
                r
                for r in self.releases.values()
                if r.running and any(owns(o, obj) for o in r.objects if o.pod_labels)
            ]
            for release in mine:
                release.pods.add((collection[2], name))
        for release in mine:
            if failed_containers(obj) and kind != "DELETED":
                self._read_logs(release, obj)

    def _read_logs(self, release: _Release, pod: dict[str, Any]) -> None:
        meta = pod.get("metadata") or {}
        name, namespace = str(meta.get("name", "")), str(meta.get("namespace", ""))
        for container, previous in failed_containers(pod):
            key = (name, container, previous)
            if key in release.logs or len(release.logs) >= LOG_CONTAINERS:
                continue
            try:
                text = self.cluster.pod_log(namespace, name, container, previous=previous, tail=LOG_LINES)
                tail = LogTail(name, container, previous, tuple(text.splitlines()[-LOG_LINES:]))
            except DeployerError as exc:
                tail = LogTail(name, container, previous, error=exc.message)
            release.logs[key] = tail

    def _events(self, release: _Release) -> tuple[EventLine, ...]:
        names: dict[str, set[str]] = {}
        for obj in release.objects:
            names.setdefault(obj.namespace, set()).add(obj.name)
        for namespace, pod in release.pods:
            names.setdefault(namespace, set()).add(pod)
        deployments = {(o.namespace, o.name) for o in release.objects if o.kind == "Deployment"}
        found: list[tuple[str, EventLine]] = []
        for namespace in sorted(names):
            items = self.cluster.list_collection(
                f"/api/v1/namespaces/{namespace}/events", {"fieldSelector": "type=Warning"}
            ).get("items", [])
            for event in items:
                involved = event.get("involvedObject") or {}
                name, kind = str(involved.get("name", "")), str(involved.get("kind", ""))
                replica_set = kind == "ReplicaSet" and any(
                    (namespace, name.rsplit("-", 1)[0]) == d for d in deployments
                )
                if name not in names[namespace] and not replica_set:
                    continue
                when = str(
                    event.get("lastTimestamp")
                    or (event.get("series") or {}).get("lastObservedTime")
                    or event.get("eventTime")
                    or (event.get("metadata") or {}).get("creationTimestamp")
                    or ""
                )
                count = int(event.get("count") or (event.get("series") or {}).get("count") or 1)
                message = " ".join(str(event.get("message", "")).split())
                found.append(
                    (when, EventLine(f"{kind} {name}", str(event.get("reason", "")), message, count))
                )
        merged: dict[tuple[str, str], EventLine] = {}
        for _when, line in sorted(found, key=lambda f: f[0], reverse=True):
            same = merged.get((line.reason, line.message))
            if same is None:
                merged[(line.reason, line.message)] = line
            elif same.object != line.object:
                merged[(line.reason, line.message)] = replace(
                    same, others=same.others + 1, count=same.count + line.count
                )
            else:
                merged[(line.reason, line.message)] = replace(same, count=same.count + line.count)
        return tuple(merged.values())[:EVENT_LIMIT]


class _Watch:
    """One watch of one collection, in a thread, again from the last resourceVersion if the
    stream ends; stop() closes its response."""

    def __init__(self, rollout: Rollout, collection: tuple[str, str, str]) -> None:
        self.rollout, self.collection = rollout, collection
        api, plural, namespace = collection
        base = f"/api/{api}" if "/" not in api else f"/apis/{api}"
        self.path = f"{base}/namespaces/{namespace}/{plural}"
        self._stopped = threading.Event()
        self._response: Any = None
        self._thread = threading.Thread(target=self._run, name=f"deployer-watch-{plural}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        response = self._response
        if response is not None:
            try:
                interrupt(response)
            except Exception:  # already closed: it stops either way
                log.debug("closing the watch of %s", self.path, exc_info=True)

    def join(self) -> None:
        self._thread.join(timeout=5)

    def _opened(self, response: Any) -> None:
        self._response = response
        if self._stopped.is_set():
            interrupt(response)

    def _run(self) -> None:
        version, failures = "", 0
        while not self._stopped.is_set() and failures < 3:
            try:
                for kind, obj in self.rollout.cluster.watch(self.path, self._opened, version):
                    if kind == "ERROR":  # e.g. 410 Gone: the resourceVersion is too old
                        version = ""
                        break
                    version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                    if kind != "BOOKMARK":
                        self.rollout._observe(self.collection, kind, obj)
                failures = 0
            except Exception as exc:  # the stream ended or was closed; a surprise must not end the run
                if self._stopped.is_set():
                    return
                failures += 1
                log.debug("watch of %s ended: %s", self.path, exc)
                self._stopped.wait(1.0)
