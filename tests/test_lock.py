"""The run lock trusts no clock but its own monotonic one: a holder is gone only once its Lease has
been seen unchanged for the lease duration, whatever times the holder wrote into it.

The Lease lives in an in-memory store with the API server's rules (resourceVersion checks on update
and delete); the lock itself is the real code, driven by an injected monotonic clock."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Mapping

import pytest

from deployer.kube import KubeError, LeaseConflict, LeaseRecord
from deployer.lock import LEASE_SECONDS, Lock, LockError, LockLost, environment_lock, force_unlock, lease_name

NS, NAME = "default", "deployer-shop-prod-0000"
ME, ALICE, BOB = "ci@runner-1 pid 7", "alice@laptop pid 42", "bob@laptop pid 9"
WALL = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)  # our wall clock: written, never compared


class Store:
    """A Lease store with the API server's optimistic concurrency."""

    def __init__(self) -> None:
        self.leases: dict[tuple[str, str], LeaseRecord] = {}
        self.labels: dict[tuple[str, str], Mapping[str, str]] = {}
        self.version = 100
        self.down = False
        self.before_write: Callable[[], None] | None = None  # a write that lands between our read and ours

    def _bump(self, record: LeaseRecord) -> LeaseRecord:
        self.version += 1
        return dataclasses.replace(record, resource_version=str(self.version))

    def _check(self) -> None:
        if self.down:
            raise KubeError("cannot reach the Kubernetes API at https://127.0.0.1:6443 (context 'ci')")

    def get_lease(self, namespace: str, name: str) -> LeaseRecord | None:
        self._check()
        return self.leases.get((namespace, name))

    def create_lease(
        self, namespace: str, name: str, record: LeaseRecord, labels: Mapping[str, str]
    ) -> LeaseRecord:
        self._check()
        if (namespace, name) in self.leases:
            raise LeaseConflict("Kubernetes API refused to create Lease: HTTP 409 Conflict: exists")
        self.leases[(namespace, name)] = stored = self._bump(record)
        self.labels[(namespace, name)] = labels
        return stored

    def replace_lease(
        self, namespace: str, name: str, record: LeaseRecord, labels: Mapping[str, str]
    ) -> LeaseRecord:
        self._check()
        if self.before_write is not None:
            interfere, self.before_write = self.before_write, None
            interfere()
        current = self.leases.get((namespace, name))
        if current is None or current.resource_version != record.resource_version:
            raise LeaseConflict("Kubernetes API refused to update Lease: HTTP 409 Conflict: modified")
        self.leases[(namespace, name)] = stored = self._bump(record)
        return stored

    def delete_lease(self, namespace: str, name: str, resource_version: str) -> bool:
        self._check()
        current = self.leases.get((namespace, name))
        if current is None:
            return False
        if current.resource_version != resource_version:
            raise LeaseConflict("Kubernetes API refused to delete Lease: HTTP 409 Conflict: precondition")
        del self.leases[(namespace, name)]
        return True

    def write_as(
        self, holder: str, renew_time: dt.datetime, *, name: str = NAME, duration: int = LEASE_SECONDS
    ) -> None:
        """Another run (with its own wall clock) creates or renews the Lease."""
        stamp = renew_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        old = self.leases.get((NS, name))
        record = LeaseRecord(holder, duration, acquire_time=stamp, renew_time=stamp)
        if old is not None:
            record = dataclasses.replace(old, holder=holder, renew_time=stamp, duration_seconds=duration)
        self.leases[(NS, name)] = self._bump(record)

    def holder(self) -> str | None:
        lease = self.leases.get((NS, NAME))
        return lease.holder if lease else None


class Clock:
    """Monotonic seconds of this process; sleeping advances it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_lock(store: Store, clock: Clock, identity: str = ME, log: list[str] | None = None) -> Lock:
    return Lock(
        store,
        NS,
        NAME,
        identity,
        what="environment 'prod' of project 'shop'",
        clock=clock,
        sleep=clock.sleep,
        wall=lambda: WALL,
        log=(log.append if log is not None else lambda _m: None),
    )


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def test_a_free_environment_is_taken_at_once_and_released(store: Store, clock: Clock) -> None:
    lock = make_lock(store, clock)
    lock.acquire(timeout=0)
    lease = store.leases[(NS, NAME)]
    assert (lease.holder, lease.renew_time, lease.transitions) == (ME, "2030-01-01T00:00:00.000000Z", 0)
    assert lock.release() is True
    assert store.holder() is None


@pytest.mark.parametrize("skew", [60, -60], ids=["holder-60s-ahead", "holder-60s-behind"])
def test_a_holder_that_keeps_renewing_is_never_taken_whatever_its_clock(
    store: Store, clock: Clock, skew: int
) -> None:
    lock = make_lock(store, clock)
    for step in range(120):  # four lease durations
        store.write_as(ALICE, now_utc() + dt.timedelta(seconds=skew))  # renews every 2 s
        assert lock.try_acquire() is False, f"taken after {step * 2}s"
        assert lock.holder == ALICE
        clock.sleep(2)
    assert store.holder() == ALICE


@pytest.mark.parametrize("skew", [60, -60], ids=["holder-60s-ahead", "holder-60s-behind"])
def test_a_holder_that_stops_is_taken_after_exactly_the_lease_duration(
    store: Store, clock: Clock, skew: int
) -> None:
    store.write_as(ALICE, now_utc() + dt.timedelta(seconds=skew))
    lock = make_lock(store, clock)
    assert lock.try_acquire() is False  # first seen now: the renewTime it wrote says nothing
    clock.sleep(LEASE_SECONDS - 0.001)
    assert lock.try_acquire() is False
    clock.sleep(0.001)
    assert lock.try_acquire() is True
    lease = store.leases[(NS, NAME)]
    assert (lease.holder, lease.transitions, lease.acquire_time) == (ME, 1, "2030-01-01T00:00:00.000000Z")


def test_a_holder_whose_clock_stands_still_is_alive_while_its_lease_changes(
    store: Store, clock: Clock
) -> None:
    frozen = now_utc() - dt.timedelta(hours=1)
    lock = make_lock(store, clock)
    for _ in range(40):
        store.write_as(ALICE, frozen)  # same renewTime each time; only the resourceVersion moves
        assert lock.try_acquire() is False
        clock.sleep(2)


def test_the_lease_duration_the_holder_wrote_is_honoured(store: Store, clock: Clock) -> None:
    store.write_as(ALICE, now_utc(), duration=600)
    lock = make_lock(store, clock)
    with pytest.raises(LockError):
        lock.acquire(timeout=599)
    clock.sleep(1)
    assert lock.try_acquire() is True


def test_waiting_for_a_held_lock_fails_naming_the_holder(store: Store, clock: Clock) -> None:
    store.write_as(ALICE, now_utc())
    log: list[str] = []
    lock = make_lock(store, clock, log=log)
    with pytest.raises(LockError) as raised:
        lock.acquire(timeout=10)
    assert clock.now == 1010.0
    assert raised.value.render() == (
        "error: environment 'prod' of project 'shop' is locked by alice@laptop pid 42 "
        "(Lease default/deployer-shop-prod-0000)\n"
        "  hint: wait for that run to finish, or raise --lock-timeout (a run that died is taken over "
        "once its Lease is seen unchanged for 30s); if it died, `deployer unlock --force` removes the "
        "lock at once"
    )
    assert log == [
        "waiting for the lock on environment 'prod' of project 'shop', held by alice@laptop pid 42 "
        "(up to 10s)"
    ]


def test_a_dead_holder_is_taken_over_while_waiting(store: Store, clock: Clock) -> None:
    store.write_as(ALICE, now_utc())
    lock = make_lock(store, clock)
    lock.acquire(timeout=60)
    assert clock.now == 1000.0 + LEASE_SECONDS
    assert store.holder() == ME


def test_a_conflict_on_renewal_rereads_the_lease_and_renews(store: Store, clock: Clock) -> None:
    lock = make_lock(store, clock)
    lock.acquire(timeout=0)
    # Someone writes the Lease between our read and our update (e.g. kubectl label): HTTP 409.
    store.before_write = lambda: store.write_as(ME, now_utc())
    clock.sleep(5)
    assert lock.renew() is True
    assert not lock.lost.is_set()
    lease = store.leases[(NS, NAME)]
    assert (lease.holder, lease.renew_time) == (ME, "2030-01-01T00:00:00.000000Z")
    assert lock.release() is True


def test_renewals_failing_past_the_deadline_lose_the_lock(store: Store, clock: Clock) -> None:
    log: list[str] = []
    lock = make_lock(store, clock, log=log)
    lock.acquire(timeout=0)
    store.down = True
    for _ in range(3):
        clock.sleep(5)
        assert lock.renew() is False
        assert not lock.lost.is_set()
    clock.sleep(5)  # 20 s without a renewal: before anyone else may take it (30 s)
    assert lock.renew() is False
    assert lock.lost.is_set() and lock.holder is None
    assert lock.lost_error().render() == (
        "error: lost the lock on environment 'prod' of project 'shop' (Lease "
        "default/deployer-shop-prod-0000): could not renew it for 20s (cannot reach the Kubernetes API "
        "at https://127.0.0.1:6443 (context 'ci'))\n"
        "  hint: run again once the other run has finished; `deployer diff` shows what remains"
    )
    assert log[-1] == lock.lost_error().message
    store.down = False
    assert lock.renew() is False  # lost for good: never taken back behind another run's back


def test_another_holder_appearing_loses_the_lock_at_once_and_keeps_theirs(store: Store, clock: Clock) -> None:
    lock = make_lock(store, clock)
    lock.acquire(timeout=0)
    store.write_as(BOB, now_utc())  # e.g. our renewals stalled and bob took it over
    clock.sleep(5)
    assert lock.renew() is False
    assert lock.lost.is_set()
    assert lock.holder == BOB
    assert isinstance(lock.lost_error(), LockLost)
    assert lock.lost_error().message.endswith(": it is now held by bob@laptop pid 9")
    assert lock.release() is False
    assert store.holder() == BOB


def test_a_lease_removed_by_unlock_force_is_taken_again_by_the_running_holder(
    store: Store, clock: Clock
) -> None:
    lock = make_lock(store, clock)
    lock.acquire(timeout=0)
    removed = force_unlock(store, NS, NAME)
    assert removed is not None and removed.holder == ME
    clock.sleep(5)
    assert lock.renew() is True
    assert store.holder() == ME


def test_a_lost_environment_lock_is_reported_by_check(store: Store) -> None:
    held = environment_lock(
        store, namespace=NS, project="shop", environment="prod", identity=ME, timeout=0, log=lambda _m: None
    )
    with pytest.raises(LockLost) as raised, held as lock:
        assert store.labels[(NS, lock.name)] == {
            "deployer-project": "shop",
            "deployer-environment": "prod",
            "app.kubernetes.io/managed-by": "deployer",
        }
        lock.check()
        store.write_as(BOB, now_utc(), name=lock.name)
        assert lock.renew() is False  # what the renewing thread would find
        lock.check()
    assert raised.value.holder == BOB
    assert store.leases[(NS, lease_name("shop", "prod"))].holder == BOB


def test_force_unlock_names_what_it_removed(store: Store) -> None:
    assert force_unlock(store, NS, NAME) is None
    store.write_as(ALICE, now_utc())
    removed = force_unlock(store, NS, NAME)
    assert removed is not None and removed.holder == ALICE
    assert store.holder() is None


def test_lease_names_are_per_project_and_environment_and_valid() -> None:
    assert re.fullmatch(r"deployer-shop-prod-[0-9a-f]{8}", lease_name("shop", "prod"))
    assert lease_name("shop", "prod") != lease_name("web", "prod")
    assert lease_name("a-b", "c") != lease_name("a", "b-c")
    long = lease_name("x" * 60, "Prod_EU")
    assert len(long) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", long)
    assert long != lease_name("x" * 60, "prod-eu")
