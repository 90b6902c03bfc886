"""What a release waits for: which of its objects helm's `--wait` checks, and why one is not ready.
Pure: manifests and live objects (raw JSON) in, plain data out.

The kinds are those helm waits for (helm 3's ready checker, helm 4's kstatus watcher): Deployments,
StatefulSets, DaemonSets, Jobs (hook Jobs too), the Pods those own, PersistentVolumeClaims, and
Services of type LoadBalancer (helm waits for their ingress address).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from deployer.manifests import parse_manifest

# (apiVersion, Kind) -> the resource's plural: the collections a rollout watch follows.
WATCHED = {
    ("apps/v1", "Deployment"): "deployments",
    ("apps/v1", "StatefulSet"): "statefulsets",
    ("apps/v1", "DaemonSet"): "daemonsets",
    ("batch/v1", "Job"): "jobs",
    ("v1", "PersistentVolumeClaim"): "persistentvolumeclaims",
    ("v1", "Service"): "services",
    ("v1", "Pod"): "pods",
}
WORKLOADS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job"})
MESSAGE_LIMIT = 300  # characters of one object's message kept (a scheduler's message can be long)


@dataclass(frozen=True, order=True)
class Followed:
    """One object of a release that helm waits for."""

    api_version: str
    kind: str
    namespace: str
    name: str
    # Workloads: the labels their pods carry (a Deployment's selector, a Job's job-name).
    pod_labels: tuple[tuple[str, str], ...] = ()

    @property
    def collection(self) -> tuple[str, str, str]:
        """(apiVersion, plural, namespace): what one watch follows."""
        return self.api_version, WATCHED[(self.api_version, self.kind)], self.namespace

    @property
    def label(self) -> str:
        return kind_label(self.api_version, self.kind)


@dataclass(frozen=True, order=True)
class NotReady:
    """An object that is not ready, and why: `reason` is short (`1/3 ready`, `ImagePullBackOff`),
    `message` the cluster's own explanation when there is one."""

    kind: str  # as users write it in kubectl: apps/Deployment, batch/Job, Pod
    namespace: str
    name: str
    reason: str
    message: str = ""
    others: int = 0  # further pods with the same reason and message

    def __str__(self) -> str:
        noun = "pod" if self.kind == "Pod" else self.kind
        more = f" (and {self.others} more)" if self.others else ""
        text = f"{noun} {self.name}{more}: {self.reason}"
        return f"{text} ({self.message})" if self.message else text


def kind_label(api_version: str, kind: str) -> str:
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    return f"{group}/{kind}" if group else kind


def followed(manifest: str, namespace: str, *, load_balancers: bool = True) -> list[Followed]:
    """The objects of a rendered manifest (hooks included) that helm waits for, sorted. Services of
    type LoadBalancer only with `load_balancers`: helm 3 waits for their address (pkg/kube/ready.go),
    helm 4's watcher (kstatus) does not."""
    if not manifest.strip():
        return []
    out = []
    for key, doc in parse_manifest(manifest, namespace).items():
        api = str(doc.get("apiVersion", ""))
        if (api, key.kind) not in WATCHED or (key.kind == "Pod" and not key.namespace):
            continue
        spec = doc.get("spec") if isinstance(doc.get("spec"), Mapping) else {}
        assert isinstance(spec, Mapping)
        if key.kind == "Service" and (spec.get("type") != "LoadBalancer" or not load_balancers):
            continue
        labels: tuple[tuple[str, str], ...] = ()
        if key.kind == "Job":
            labels = (("job-name", key.name),)
        elif key.kind in WORKLOADS:
            selector = spec.get("selector") if isinstance(spec.get("selector"), Mapping) else {}
            assert isinstance(selector, Mapping)
            match = selector.get("matchLabels")
            if isinstance(match, Mapping):
                labels = tuple(sorted((str(k), str(v)) for k, v in match.items()))
        out.append(Followed(api, key.kind, key.namespace, key.name, labels))
    return sorted(out)


def owns(workload: Followed, pod: Mapping[str, Any]) -> bool:
    """Whether a pod is one of a workload's (its selector's labels, in its namespace)."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    return (
        bool(workload.pod_labels)
        and meta.get("namespace") == workload.namespace
        and all(labels.get(k) == v for k, v in workload.pod_labels)
    )


def problem(obj: Followed, live: Mapping[str, Any] | None) -> NotReady | None:
    """Why one followed object is not ready (None when it is)."""
    if live is None:
        return NotReady(obj.label, obj.namespace, obj.name, "not created yet")
    status = live.get("status") or {}
    spec = live.get("spec") or {}
    generation = (live.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    stale = generation is not None and observed is not None and observed < generation

    def out(reason: str, message: str = "") -> NotReady:
        return NotReady(obj.label, obj.namespace, obj.name, reason, _clip(message))

    if obj.kind in ("Deployment", "StatefulSet"):
        want = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
        ready = int(status.get("readyReplicas") or 0)
        updated = int(status.get("updatedReplicas") or 0)
        failing = _condition(status, "ReplicaFailure", "True") or _condition(status, "Progressing", "False")
        if stale or ready < want or updated < want:
            reason = f"{ready}/{want} ready" + (f", {updated} updated" if updated < want else "")
            return out(reason, failing.get("message", "") if failing else "")
        return None
    if obj.kind == "DaemonSet":
        want = int(status.get("desiredNumberScheduled") or 0)
        ready = int(status.get("numberReady") or 0)
        updated = int(status.get("updatedNumberScheduled") or 0)
        if stale or ready < want or updated < want:
            return out(f"{ready}/{want} ready")
        return None
    if obj.kind == "Job":
        failed = _condition(status, "Failed", "True")
        if failed:
            return out(str(failed.get("reason") or "Failed"), str(failed.get("message") or ""))
        if _condition(status, "Complete", "True"):
            return None
        active, fails = int(status.get("active") or 0), int(status.get("failed") or 0)
        return out(f"not complete: {active} active, {fails} failed")
    if obj.kind == "PersistentVolumeClaim":
        phase = str(status.get("phase") or "Pending")
        if phase == "Bound":
            return None
        storage_class = spec.get("storageClassName")
        return out(phase, f"storageClassName {storage_class}" if storage_class else "no storageClassName")
    if obj.kind == "Service":
        if spec.get("type") != "LoadBalancer" or spec.get("externalIPs"):
            return None
        if (status.get("loadBalancer") or {}).get("ingress"):
            return None
        return out(
            "no load-balancer address yet",
            "type LoadBalancer: helm waits until a load-balancer controller sets "
            "status.loadBalancer.ingress (none does on a cluster without one)",
        )
    return None


def pod_problem(pod: Mapping[str, Any]) -> NotReady | None:
    """Why a pod is not ready: its containers' waiting or terminated reasons first (what kubectl
    shows in STATUS), else the pod's own condition; None for a ready or succeeded pod."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    name, namespace = str(meta.get("name", "")), str(meta.get("namespace", ""))
    phase = str(status.get("phase") or "Pending")
    if phase == "Succeeded" or meta.get("deletionTimestamp"):
        return None
    if phase != "Failed" and _condition(status, "Ready", "True"):
        return None

    def out(reason: str, message: str = "") -> NotReady:
        return NotReady("Pod", namespace, name, reason, _clip(message))

    for c in _containers(status):
        state, last = c.get("state") or {}, c.get("lastState") or {}
        restarts = int(c.get("restartCount") or 0)
        waiting, terminated = state.get("waiting") or {}, state.get("terminated") or {}
        ended = terminated or last.get("terminated") or {}
        if waiting.get("reason") and waiting.get("reason") not in ("ContainerCreating", "PodInitializing"):
            extra = _exit(ended, restarts)
            message = "; ".join(x for x in (str(waiting.get("message") or ""), extra) if x)
            return out(f"container {c.get('name')}: {waiting['reason']}", message)
        if terminated and (terminated.get("exitCode") or 0) != 0:
            reason = str(terminated.get("reason") or "Error")
            message = "; ".join(
                x for x in (str(terminated.get("message") or ""), _exit(terminated, restarts)) if x
            )
            return out(f"container {c.get('name')}: {reason}", message)
    if phase == "Failed":
        return out(str(status.get("reason") or "Failed"), str(status.get("message") or ""))
    scheduled = _condition(status, "PodScheduled", "False")
    if scheduled:
        return out(str(scheduled.get("reason") or "not scheduled"), str(scheduled.get("message") or ""))
    for c in _containers(status):
        if not c.get("ready") and (c.get("state") or {}).get("running"):
            restarts = int(c.get("restartCount") or 0)
            return out(
                f"container {c.get('name')}: running, not ready",
                f"{restarts} restart(s)" if restarts else "its readiness probe does not pass",
            )
    ready = _condition(status, "Ready", "False")
    return out(phase, str((ready or {}).get("message") or ""))


def failed_containers(pod: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """The containers of a pod whose logs explain a failure: (name, previous) for one that
    crashed and restarts (its previous run's log) or ended in error (its own)."""
    out = []
    for c in _containers(pod.get("status") or {}):
        state, last = c.get("state") or {}, c.get("lastState") or {}
        terminated = state.get("terminated") or {}
        if terminated and (terminated.get("exitCode") or 0) != 0:
            out.append((str(c.get("name")), False))
        elif (state.get("waiting") or {}).get("reason") == "CrashLoopBackOff" or (
            last.get("terminated") and int(c.get("restartCount") or 0) > 0
        ):
            out.append((str(c.get("name")), True))
    return out


def merged(problems: Iterable[NotReady]) -> list[NotReady]:
    """Pods that are not ready for the same reason, with the same message, as one (the first,
    with how many more): ten replicas that cannot pull one image are one line."""
    out: list[NotReady] = []
    index: dict[tuple[str, str, str, str], int] = {}
    for p in problems:
        key = (p.kind, p.namespace, p.reason, p.message)
        if p.kind == "Pod" and key in index:
            first = out[index[key]]
            out[index[key]] = NotReady(
                first.kind, first.namespace, first.name, first.reason, first.message, first.others + 1
            )
            continue
        index[key] = len(out)
        out.append(p)
    return out


def _containers(status: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        c
        for field in ("initContainerStatuses", "containerStatuses")
        for c in status.get(field) or []
        if isinstance(c, Mapping)
    ]


def _exit(terminated: Mapping[str, Any], restarts: int) -> str:
    parts = []
    if terminated:
        parts.append(f"exit code {terminated.get('exitCode')}")
    if restarts:
        parts.append(f"{restarts} restart(s)")
    return ", ".join(parts)


def _condition(status: Mapping[str, Any], kind: str, value: str) -> dict[str, Any] | None:
    for c in status.get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == kind and c.get("status") == value:
            return c
    return None


def _clip(message: str) -> str:
    text = " ".join(message.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"
