"""Why an object is not ready, as the rollout line and the failure diagnosis say it (pure).
Objects are shaped like what the API server returns (the cluster tests see the real ones)."""

from __future__ import annotations

from typing import Any

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
from deployer.redact import Redactor
from deployer.rollout import Diagnosis, EventLine, LogTail

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  replicas: 3
  selector: {matchLabels: {app: api}}
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec: {type: ClusterIP}
---
apiVersion: v1
kind: Service
metadata: {name: edge}
spec: {type: LoadBalancer}
---
apiVersion: batch/v1
kind: Job
metadata: {name: migrate, annotations: {helm.sh/hook: pre-upgrade}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
"""


def pod(name: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "shop", "labels": {"app": "api"}}, "status": status}


def test_the_objects_helm_waits_for_are_followed_and_nothing_else() -> None:
    found = followed(MANIFEST, "shop")
    assert [(f.label, f.name) for f in found] == [
        ("apps/Deployment", "api"),
        ("batch/Job", "migrate"),
        ("Service", "edge"),
    ]
    deployment = found[0]
    assert deployment.pod_labels == (("app", "api"),)
    assert owns(deployment, pod("api-1"))
    assert not owns(deployment, {"metadata": {"name": "x", "namespace": "other", "labels": {"app": "api"}}})
    assert found[1].pod_labels == (("job-name", "migrate"),)


def test_a_deployment_says_how_many_replicas_are_ready() -> None:
    dep = Followed("apps/v1", "Deployment", "shop", "api", (("app", "api"),))
    live = {"metadata": {"generation": 2}, "spec": {"replicas": 3}, "status": {"observedGeneration": 2}}
    live["status"].update(readyReplicas=1, updatedReplicas=3)
    assert str(problem(dep, live)) == "apps/Deployment api: 1/3 ready"
    live["status"].update(readyReplicas=3)
    assert problem(dep, live) is None


def test_a_pod_says_what_kubectl_would_show_and_why() -> None:
    pulling = pod(
        "api-7f9-x2",
        phase="Pending",
        containerStatuses=[
            {
                "name": "app",
                "ready": False,
                "restartCount": 0,
                "state": {
                    "waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "a:1"'}
                },
            }
        ],
    )
    assert str(pod_problem(pulling)) == (
        'pod api-7f9-x2: container app: ImagePullBackOff (Back-off pulling image "a:1")'
    )
    assert failed_containers(pulling) == []
    crashing = pod(
        "api-1",
        phase="Running",
        containerStatuses=[
            {
                "name": "app",
                "restartCount": 4,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 1m20s"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
            }
        ],
    )
    assert str(pod_problem(crashing)) == (
        "pod api-1: container app: CrashLoopBackOff (back-off 1m20s; exit code 1, 4 restart(s))"
    )
    assert failed_containers(crashing) == [("app", True)]  # its previous run's log
    unschedulable = pod(
        "api-2",
        phase="Pending",
        conditions=[
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes"}
        ],
    )
    assert str(pod_problem(unschedulable)) == "pod api-2: Unschedulable (0/3 nodes)"
    ready = pod("api-3", phase="Running", conditions=[{"type": "Ready", "status": "True"}])
    assert pod_problem(ready) is None


def test_jobs_pvcs_and_load_balancers_say_why_they_wait() -> None:
    job = Followed("batch/v1", "Job", "shop", "migrate")
    failed = {
        "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}
    }
    assert str(problem(job, failed)) == "batch/Job migrate: BackoffLimitExceeded"
    assert problem(job, {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}) is None
    pvc = Followed("v1", "PersistentVolumeClaim", "shop", "data")
    pending = {"spec": {"storageClassName": "fast"}, "status": {"phase": "Pending"}}
    assert str(problem(pvc, pending)) == "PersistentVolumeClaim data: Pending (storageClassName fast)"
    lb = Followed("v1", "Service", "shop", "edge")
    assert problem(lb, {"spec": {"type": "LoadBalancer"}, "status": {}}) is not None
    assert (
        problem(
            lb,
            {"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}},
        )
        is None
    )


def test_a_diagnosis_masks_secret_texts_in_every_line() -> None:
    secret = "hunter2-canary-5f3a9c"
    diagnosis = Diagnosis(
        events=(EventLine("Pod api-1", "Failed", f"env DB_PASSWORD={secret}"),),
        logs=(LogTail("api-1", "app", True, (f"dsn postgres://api:{secret}@db", "panic")),),
    ).redacted(Redactor([secret]))
    text = "\n".join(diagnosis.lines())
    assert secret not in text
    assert "| panic" in text and "postgres://api:" in text


def test_pods_failing_alike_are_one_line() -> None:
    pulling = [
        NotReady("Pod", "shop", f"api-{i}", "container app: ImagePullBackOff", "a:1") for i in range(3)
    ]
    other = NotReady("Pod", "shop", "api-9", "Unschedulable")
    assert [str(p) for p in merged([*pulling, other])] == [
        "pod api-0 (and 2 more): container app: ImagePullBackOff (a:1)",
        "pod api-9: Unschedulable",
    ]


def test_statefulsets_and_daemonsets_count_ready_replicas() -> None:
    sts = Followed("apps/v1", "StatefulSet", "shop", "db", (("app", "db"),))
    live = {"spec": {"replicas": 2}, "status": {"readyReplicas": 1, "updatedReplicas": 2}}
    assert str(problem(sts, live)) == "apps/StatefulSet db: 1/2 ready"
    ds = Followed("apps/v1", "DaemonSet", "shop", "agent", (("app", "agent"),))
    live = {"status": {"desiredNumberScheduled": 3, "numberReady": 3, "updatedNumberScheduled": 3}}
    assert problem(ds, live) is None
    live["status"]["numberReady"] = 2
    assert str(problem(ds, live)) == "apps/DaemonSet agent: 2/3 ready"
