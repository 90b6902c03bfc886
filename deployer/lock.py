"""One run at a time per environment: a coordination.k8s.io Lease in the cluster, renewed while the
run lasts. A second run waits up to --lock-timeout, then fails naming the holder."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from deployer.errors import DeployerError
from deployer.kube import Cluster

LEASE_NAMESPACE = "default"
LEASE_SECONDS = 30


class LockError(DeployerError):
    pass


def lease_name(environment: str) -> str:
    return f"deployer-{environment}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _lease(environment: str, holder: str, resource_version: str | None = None) -> Any:
    from lightkube.models.coordination_v1 import LeaseSpec
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.coordination_v1 import Lease

    now = _now()
    return Lease(
        metadata=ObjectMeta(
            name=lease_name(environment),
            namespace=LEASE_NAMESPACE,
            resourceVersion=resource_version,
            labels={"app.kubernetes.io/managed-by": "deployer"},
        ),
        spec=LeaseSpec(
            holderIdentity=holder, leaseDurationSeconds=LEASE_SECONDS, acquireTime=now, renewTime=now
        ),
    )


def _expired(lease: Any) -> bool:
    spec = lease.spec
    if spec is None or spec.renewTime is None:
        return True
    renew = spec.renewTime if spec.renewTime.tzinfo else spec.renewTime.replace(tzinfo=dt.UTC)
    expiry: dt.datetime = renew + dt.timedelta(seconds=spec.leaseDurationSeconds or LEASE_SECONDS)
    return _now() > expiry


def try_acquire(cluster: Cluster, environment: str, holder: str) -> tuple[bool, Any]:
    """(True, lease) when we hold it now; (False, the holder's lease) otherwise."""
    from lightkube import ApiError
    from lightkube.resources.coordination_v1 import Lease

    client = cluster.client()
    try:
        return True, cluster._call("create the lock Lease", lambda: _create(client, environment, holder))
    except _Conflict:
        pass
    current = cluster._call(
        "read the lock Lease", lambda: client.get(Lease, lease_name(environment), namespace=LEASE_NAMESPACE)
    )
    if not _expired(current):
        return False, current
    try:  # an abandoned lock (its holder died): take it over, guarded by resourceVersion
        return True, client.replace(_lease(environment, holder, current.metadata.resourceVersion))
    except ApiError as exc:
        if exc.status.code == 409:
            return False, current
        raise


class _Conflict(Exception):
    pass


def _create(client: Any, environment: str, holder: str) -> Any:
    from lightkube import ApiError

    try:
        return client.create(_lease(environment, holder))
    except ApiError as exc:
        if exc.status.code == 409:
            raise _Conflict from None
        raise


@contextmanager
def environment_lock(
    cluster: Cluster, environment: str, holder: str, *, timeout: float, log: Callable[[str], None]
) -> Iterator[None]:
    deadline = time.monotonic() + timeout
    announced = False
    while True:
        held, lease = try_acquire(cluster, environment, holder)
        if held:
            break
        who = lease.spec.holderIdentity if lease.spec else "?"
        if time.monotonic() >= deadline:
            raise LockError(
                f"environment '{environment}' is locked by {who} "
                f"(Lease {LEASE_NAMESPACE}/{lease_name(environment)})",
                hint=f"wait for that run to finish, raise --lock-timeout, or if it died: "
                f"deployer unlock -e {environment} --force",
            )
        if not announced:
            log(f"waiting for the lock on '{environment}', held by {who} (up to {timeout:.0f}s)")
            announced = True
        time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))
    stop = threading.Event()
    state = {"lease": lease}

    def renew() -> None:
        while not stop.wait(LEASE_SECONDS / 3):
            try:
                current = state["lease"]
                current.spec.renewTime = _now()
                state["lease"] = cluster.client().replace(current)
            except Exception as exc:  # keep running: the lease simply expires if renewals keep failing
                log(f"could not renew the lock on '{environment}': {exc}")

    thread = threading.Thread(target=renew, name="deployer-lock-renew", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        try:
            release(cluster, environment, holder)
        except Exception as exc:  # the run's own outcome matters more; the lease expires by itself
            log(f"could not release the lock on '{environment}' ({exc}); it expires within {LEASE_SECONDS}s")


def release(cluster: Cluster, environment: str, holder: str | None) -> bool:
    """Delete the lock; only ours unless `holder` is None (unlock --force). True if one was removed."""
    from lightkube import ApiError
    from lightkube.resources.coordination_v1 import Lease

    client = cluster.client()
    try:
        current = client.get(Lease, lease_name(environment), namespace=LEASE_NAMESPACE)
        if holder is not None and (current.spec is None or current.spec.holderIdentity != holder):
            return False
        client.delete(Lease, lease_name(environment), namespace=LEASE_NAMESPACE)
        return True
    except ApiError as exc:
        if exc.status.code == 404:
            return False
        raise
