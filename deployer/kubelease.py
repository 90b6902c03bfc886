"""The run lock's Lease (deployer/lock.py decides; these only read and write it, by raw JSON, so
the MicroTime strings come back exactly as they were written)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deployer.kubeconn import Connection, KubeError


class LeaseConflict(KubeError):
    """The Lease changed, appeared or went since it was read (HTTP 409, or 404 on an update)."""


@dataclass(frozen=True)
class LeaseRecord:
    """A coordination.k8s.io/v1 Lease's spec, and the resourceVersion it was read at ("" before it
    is stored). Times are MicroTime strings, kept as written: the lock never compares them."""

    holder: str
    duration_seconds: int
    acquire_time: str = ""
    renew_time: str = ""
    transitions: int = 0
    resource_version: str = ""

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> LeaseRecord:
        spec = obj.get("spec") or {}
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=str(spec.get("acquireTime") or ""),
            renew_time=str(spec.get("renewTime") or ""),
            transitions=int(spec.get("leaseTransitions") or 0),
            resource_version=str((obj.get("metadata") or {}).get("resourceVersion") or ""),
        )

    def to_object(self, namespace: str, name: str, labels: Mapping[str, str]) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels)}
        if self.resource_version:
            metadata["resourceVersion"] = self.resource_version
        spec: dict[str, Any] = {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.duration_seconds,
            "leaseTransitions": self.transitions,
        }
        if self.acquire_time:
            spec["acquireTime"] = self.acquire_time
        if self.renew_time:
            spec["renewTime"] = self.renew_time
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}


class Leases(Connection):
    def get_lease(self, namespace: str, name: str) -> LeaseRecord | None:
        obj = self._lease_request("GET", namespace, name, f"read Lease {namespace}/{name}", missing_ok=True)
        return None if obj is None else LeaseRecord.from_object(obj)

    def create_lease(
        self, namespace: str, name: str, record: LeaseRecord, labels: Mapping[str, str]
    ) -> LeaseRecord:
        """Raises LeaseConflict when the Lease exists already."""
        body = record.to_object(namespace, name, labels)
        obj = self._lease_request("POST", namespace, name, f"create Lease {namespace}/{name}", body)
        return LeaseRecord.from_object(obj)

    def replace_lease(
        self, namespace: str, name: str, record: LeaseRecord, labels: Mapping[str, str]
    ) -> LeaseRecord:
        """Write `record` over the Lease read at record.resource_version; raises LeaseConflict when it
        changed since (HTTP 409) or is gone (404)."""
        body = record.to_object(namespace, name, labels)
        what = f"update Lease {namespace}/{name}"
        obj = self._lease_request("PUT", namespace, name, what, body, conflict=(404, 409))
        return LeaseRecord.from_object(obj)

    def delete_lease(self, namespace: str, name: str, resource_version: str) -> bool:
        """Delete the Lease only as it was read (a precondition on resourceVersion): raises
        LeaseConflict when it changed since; False when it was gone already."""
        body = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "preconditions": {"resourceVersion": resource_version},
        }
        what = f"delete Lease {namespace}/{name}"
        return self._lease_request("DELETE", namespace, name, what, body, missing_ok=True) is not None

    def _lease_request(
        self,
        method: str,
        namespace: str,
        name: str,
        what: str,
        body: Mapping[str, Any] | None = None,
        *,
        conflict: tuple[int, ...] = (409,),
        missing_ok: bool = False,
    ) -> Any:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        if method != "POST":
            path += f"/{name}"
        http = self.client()._client._client

        def send() -> Any:
            response = http.request(method, path, json=body)
            if response.status_code == 404 and missing_ok:
                return None
            if response.status_code in conflict:
                try:
                    response.raise_for_status()
                except Exception as exc:
                    refused = self._refused(what, exc)
                    raise LeaseConflict(refused.message, hint=refused.hint) from None
            response.raise_for_status()
            return response.json()

        return self._call(what, send)
