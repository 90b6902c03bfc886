"""One run at a time per project and environment: a coordination.k8s.io Lease, renewed while the run
lasts. A second run waits up to --lock-timeout, then fails naming the holder.

Clocks are not trusted (client-go's leader election does the same): the times in a Lease were written
by another machine's wall clock, which may be minutes off. A holder is judged gone only once its
record (holder, times, resourceVersion) has been seen unchanged for its leaseDurationSeconds on THIS
process's monotonic clock. The wall clock (`wall_now`) is only ever written, as renewTime and
acquireTime for people reading the Lease.

Losing the lock. The holder renews every RENEW_EVERY seconds; a conflicting update (HTTP 409: the
resourceVersion we held is stale) re-reads the Lease and tries again at once. The lock is lost when
renewals keep failing for RENEW_DEADLINE seconds (shorter than the lease, so no one can have taken
it over yet), or when a renewal finds another holder. Then `Lock.lost` (a threading.Event) is set,
`Lock.holder` names the new holder (None when renewals failed), and `Lock.lost_error()` is the
LockLost error to report. Whoever runs work under the lock checks `lock.lost.is_set()` before it
starts each new release (`lock.check()` raises the LockLost), lets what is running finish or roll
back, reports, and then calls `lock.check()` so that the run exits 1 naming the new holder.

The Lease is read and written through a LeaseStore (deployer/kube.py's Cluster implements it).
DEPLOYER_TEST_CLOCK_OFFSET (seconds, tests only) shifts this process's wall clock, to prove it is
never compared.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Protocol

from deployer.errors import DeployerError
from deployer.kube import LeaseConflict, LeaseRecord
from deployer.observed import ENV_LABEL, PROJECT_LABEL

LEASE_SECONDS = 30  # a holder unchanged this long (on our monotonic clock) is gone
RENEW_EVERY = 5.0
RENEW_DEADLINE = 20.0  # < LEASE_SECONDS: we give up before anyone may take over
RETRY_EVERY = 2.0  # while waiting for another run's lock
NAME_MAX = 63
CLOCK_OFFSET_ENV = "DEPLOYER_TEST_CLOCK_OFFSET"


class LockError(DeployerError):
    """The lock is held by another run (after waiting --lock-timeout)."""


class LockLost(DeployerError):
    """This run held the lock and lost it; `holder` is who holds it now (None: renewals failed)."""

    def __init__(self, message: str, *, hint: str = "", holder: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.holder = holder


class LeaseStore(Protocol):
    def get_lease(self, namespace: str, name: str) -> LeaseRecord | None: ...

    def create_lease(
        self, namespace: str, name: str, record: LeaseRecord, labels: Mapping[str, str]
    ) -> LeaseRecord: ...

    def replace_lease(
        self, namespace: str, name: str, record: LeaseRecord, labels: Mapping[str, str]
    ) -> LeaseRecord: ...

    def delete_lease(self, namespace: str, name: str, resource_version: str) -> bool: ...


def lease_name(project: str, environment: str) -> str:
    """`deployer-<project>-<environment>-<hash>`: a valid name of at most 63 characters. The hash of
    both parts keeps ('a-b', 'c') and ('a', 'b-c') apart and survives truncation."""
    digest = hashlib.sha256(f"{project}\0{environment}".encode()).hexdigest()[:8]
    readable = re.sub(r"[^a-z0-9-]+", "-", f"deployer-{project}-{environment}".lower()).strip("-")
    return f"{readable[: NAME_MAX - len(digest) - 1].rstrip('-')}-{digest}"


def wall_now() -> dt.datetime:
    """This process's wall clock (shifted by DEPLOYER_TEST_CLOCK_OFFSET in tests)."""
    offset = float(os.environ.get(CLOCK_OFFSET_ENV) or 0)
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset)


def micro_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Lock:
    """The Lease `namespace/name`, taken by `identity`. Not thread-safe except `lost` and `holder`,
    which the renewing thread sets and the run reads."""

    def __init__(
        self,
        store: LeaseStore,
        namespace: str,
        name: str,
        identity: str,
        *,
        what: str,
        labels: Mapping[str, str] | None = None,
        duration: int = LEASE_SECONDS,
        renew_deadline: float = RENEW_DEADLINE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall: Callable[[], dt.datetime] = wall_now,
        log: Callable[[str], None] = lambda _message: None,
    ) -> None:
        self.store, self.namespace, self.name, self.identity = store, namespace, name, identity
        self.what = what  # for messages: "environment 'prod' of project 'shop'"
        self.labels = dict(labels or {})
        self.duration, self.renew_deadline = duration, renew_deadline
        self.clock, self.sleep, self.wall, self.log = clock, sleep, wall, log
        self.lost = threading.Event()
        self.holder: str | None = None  # another run holding it (while we wait, or after we lost it)
        self.last_error = ""
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0
        self._renewed_at = 0.0
        self._held = False

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def held(self) -> bool:
        return self._held and not self.lost.is_set()

    def try_acquire(self) -> bool:
        """One attempt: take the Lease if it is missing, ours, free, or has been seen unchanged for
        its duration. True when we hold it now."""
        now = self.clock()
        current = self.store.get_lease(self.namespace, self.name)
        if current is None:
            return self._write(None, now)
        if current != self._observed:
            self._observed, self._observed_at = current, now
        duration = current.duration_seconds or LEASE_SECONDS
        if current.holder and current.holder != self.identity and now < self._observed_at + duration:
            self.holder = current.holder
            return False
        return self._write(current, now)

    def acquire(self, timeout: float) -> None:
        """Take the lock, waiting up to `timeout` seconds for another run's; LockError when it stays held."""
        deadline = self.clock() + timeout
        announced = False
        while not self.try_acquire():
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise LockError(
                    f"{self.what} is locked by {self.holder or '?'} (Lease {self.ref})",
                    hint="wait for that run to finish, or raise --lock-timeout (a run that died is "
                    f"taken over once its Lease is seen unchanged for {self.duration}s); if it died, "
                    "`deployer unlock --force` removes the lock at once",
                )
            if not announced and self.holder:
                self.log(f"waiting for the lock on {self.what}, held by {self.holder} (up to {timeout:.0f}s)")
                announced = True
            self.sleep(min(RETRY_EVERY, remaining))
        self.holder = None
        self._held = True

    def renew(self) -> bool:
        """One renewal (the background thread calls this every RENEW_EVERY seconds). False when it
        failed; sets `lost` when another holder appeared or renewals failed for renew_deadline."""
        if self.lost.is_set():
            return False
        try:
            renewed = self._renew_once()
            if not renewed and not self.lost.is_set():  # a 409: the Lease was re-read; try again now
                renewed = self._renew_once()
        except Exception as exc:  # whatever it is, the deadline decides; the thread must keep going
            failure = exc.message if isinstance(exc, DeployerError) else f"{type(exc).__name__}: {exc}"
            self.last_error = failure
            self.log(f"could not renew the lock on {self.what}: {self.last_error}")
            renewed = False
        if renewed:
            return True
        if not self.lost.is_set() and self.clock() - self._renewed_at >= self.renew_deadline:
            self._lose(None)
        return False

    def _renew_once(self) -> bool:
        now = self.clock()
        current = self.store.get_lease(self.namespace, self.name)
        if current is not None and current.holder != self.identity:
            self._lose(current.holder or "nobody (the Lease was emptied)")
            return False
        # Ours (or removed by `unlock --force` while we still run: take it again, nobody else has it).
        return self._write(current, now)

    def _write(self, current: LeaseRecord | None, now: float) -> bool:
        stamp = micro_time(self.wall())
        ours = current is not None and current.holder == self.identity
        record = LeaseRecord(
            holder=self.identity,
            duration_seconds=self.duration,
            acquire_time=current.acquire_time if current is not None and ours else stamp,
            renew_time=stamp,
            transitions=(current.transitions + (0 if ours else 1)) if current is not None else 0,
            resource_version=current.resource_version if current is not None else "",
        )
        try:
            if current is None:
                written = self.store.create_lease(self.namespace, self.name, record, self.labels)
            else:
                written = self.store.replace_lease(self.namespace, self.name, record, self.labels)
        except LeaseConflict as exc:  # someone wrote first: the next attempt reads their record
            self.last_error = exc.message
            return False
        self._observed, self._observed_at, self._renewed_at = written, now, now
        return True

    def _lose(self, holder: str | None) -> None:
        self.holder = holder
        self.lost.set()
        self.log(self.lost_error().message)

    def check(self) -> None:
        """Raise LockLost if the lock was lost (call before starting each release, and at the end)."""
        if self.lost.is_set():
            raise self.lost_error()

    def lost_error(self) -> LockLost:
        if self.holder is not None:
            message = f"lost the lock on {self.what} (Lease {self.ref}): it is now held by {self.holder}"
        else:
            message = (
                f"lost the lock on {self.what} (Lease {self.ref}): could not renew it for "
                f"{self.renew_deadline:.0f}s" + (f" ({self.last_error})" if self.last_error else "")
            )
        return LockLost(
            message,
            hint="run again once the other run has finished; `deployer diff` shows what remains",
            holder=self.holder,
        )

    def release(self) -> bool:
        """Delete the Lease if it is still ours, exactly as we last wrote it. True if removed."""
        if not self.held:
            return False
        self._held = False
        current = self.store.get_lease(self.namespace, self.name)
        if current is None or current.holder != self.identity:
            return False
        try:
            return self.store.delete_lease(self.namespace, self.name, current.resource_version)
        except LeaseConflict:  # renewed or taken between our read and the delete: leave it
            return False


def force_unlock(store: LeaseStore, namespace: str, name: str) -> LeaseRecord | None:
    """Remove the Lease whoever holds it (`unlock --force`); the record removed, or None if none."""
    current = store.get_lease(namespace, name)
    if current is None:
        return None
    # Exactly what we read: a run that renews in between keeps its lock (run unlock again if it died).
    if not store.delete_lease(namespace, name, current.resource_version):
        return None
    return current


@contextmanager
def environment_lock(
    store: LeaseStore,
    *,
    namespace: str,
    project: str,
    environment: str,
    identity: str,
    timeout: float,
    log: Callable[[str], None],
) -> Iterator[Lock]:
    """Hold the project's environment lock for the block, renewing it in a thread. The block checks
    `lock.lost` / calls `lock.check()` (see the module docstring)."""
    lock = Lock(
        store,
        namespace,
        lease_name(project, environment),
        identity,
        what=f"environment '{environment}' of project '{project}'",
        labels={PROJECT_LABEL: project, ENV_LABEL: environment, "app.kubernetes.io/managed-by": "deployer"},
        log=log,
    )
    lock.acquire(timeout)
    stop = threading.Event()

    def renew_until_stopped() -> None:
        while not stop.wait(RENEW_EVERY) and not lock.lost.is_set():
            lock.renew()

    thread = threading.Thread(target=renew_until_stopped, name="deployer-lock-renew", daemon=True)
    thread.start()
    try:
        yield lock
    finally:
        stop.set()
        thread.join()
        try:
            lock.release()
        except DeployerError as exc:  # the run's own outcome matters more; the lease expires by itself
            log(
                f"could not release the lock on {environment} ({exc.message}); others take it over "
                f"after {lock.duration}s"
            )
