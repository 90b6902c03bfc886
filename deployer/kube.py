"""The Kubernetes API edge: one lightkube client for the target deployer/kubeconfig.py resolved (as
helm does), and the few reads and writes deployer needs, one concern a module:

- deployer/kubeconn.py: the connection (client, request counting, errors as KubeError), `version`;
- here: discovery (`api_versions`) and single objects (live reads, server-side apply and dry runs);
- deployer/kubewatch.py: watches, lists and pod logs for the rollout watch and the diagnosis;
- deployer/kubelease.py: the run lock's Lease;
- deployer/kuberecords.py: Helm's release records in one list.

Importers use this module's names (`Cluster`, `KubeError`, `Refused`, ...). Nothing outside these
modules imports lightkube.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deployer.kubeconfig import KubeTarget, resolve_target
from deployer.kubeconn import REFUSING_STATUS, KubeError, Refused, _response_message, validates_fields
from deployer.kubelease import LeaseConflict, LeaseRecord, Leases
from deployer.kuberecords import ReleaseRecords
from deployer.kubewatch import Watches, interrupt

__all__ = [
    "REFUSING_STATUS",
    "Cluster",
    "KubeError",
    "KubeTarget",
    "LeaseConflict",
    "LeaseRecord",
    "Refused",
    "interrupt",
    "resolve_target",
    "validates_fields",
]


class Cluster(ReleaseRecords, Leases, Watches):
    """A connection to one cluster, counting the API requests it makes."""

    def api_versions(self) -> list[str]:
        """group/version and group/version/Kind for every served resource (aggregated discovery:
        two requests however many groups)."""
        accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
        out: set[str] = set()
        for path in ("/api", "/apis"):
            doc = self.raw_get(path, accept)
            for group in doc.get("items", []):
                gname = group.get("metadata", {}).get("name", "")
                for version in group.get("versions", []):
                    gv = f"{gname}/{version['version']}" if gname else version["version"]
                    out.add(gv)
                    for res in version.get("resources", []):
                        kind = res.get("responseKind", {}).get("kind")
                        if kind:
                            out.add(f"{gv}/{kind}")
                            self.resources[(gv, kind)] = (res["resource"], res.get("scope") == "Namespaced")
        return sorted(out)

    def object_path(self, doc: Mapping[str, Any], namespace: str) -> str | None:
        """The REST path of a manifest object, or None when the cluster does not serve its kind."""
        api, kind = str(doc.get("apiVersion", "")), str(doc.get("kind", ""))
        if not self.resources:
            self.api_versions()
        found = self.resources.get((api, kind))
        if found is None:
            return None
        plural, namespaced = found
        base = f"/api/{api}" if "/" not in api else f"/apis/{api}"
        name = (doc.get("metadata") or {}).get("name", "")
        ns = (doc.get("metadata") or {}).get("namespace") or namespace
        return f"{base}/namespaces/{ns}/{plural}/{name}" if namespaced else f"{base}/{plural}/{name}"

    def live_object(self, doc: Mapping[str, Any], namespace: str) -> Any:
        """The live object a manifest object names, or None when it does not exist (or the cluster
        does not serve its kind yet, e.g. a CRD the same release installs)."""
        path = self.object_path(doc, namespace)
        if path is None:
            return None
        http = self.client()._client._client
        return self._call(f"read {path}", lambda: _get_or_none(http, path))

    def live_and_applied(self, doc: Mapping[str, Any], namespace: str) -> tuple[Any, Any]:
        """The live object and what it would become if `doc` were applied now (a server-side
        apply dry run, forced, so the server computes the result). (None, None): kind not served;
        (None, "missing"): no such object; (live, Refused): the API server refuses the result."""
        path = self.object_path(doc, namespace)
        if path is None:
            return None, None
        http = self.client()._client._client

        def fetch() -> tuple[Any, Any]:
            live = _get_or_none(http, path)
            if live is None:
                return None, "missing"
            return live, self._apply_patch(http, path, doc)

        result: tuple[Any, Any] = self._call(f"dry-run apply {path}", fetch)
        return result

    def dry_run_apply(self, doc: Mapping[str, Any], namespace: str) -> Any:
        """What `doc` would make of its object if applied now (server-side apply, forced, dry run),
        Refused when the API server (validation, an immutable field, an admission webhook) refuses
        it, or None when the cluster does not serve its kind."""
        path = self.object_path(doc, namespace)
        if path is None:
            return None
        http = self.client()._client._client
        return self._call(f"dry-run apply {path}", lambda: self._apply_patch(http, path, doc))

    def server_side_apply(
        self, doc: Mapping[str, Any], namespace: str, *, manager: str, dry_run: bool
    ) -> Any:
        """Apply `doc` server-side as `manager` (forced: this manager takes the fields it sets), or
        with `dry_run` say what it would make of the object; Refused when the API server refuses
        it, None when the cluster does not serve its kind."""
        path = self.object_path(doc, namespace)
        if path is None:
            return None
        http = self.client()._client._client
        what = f"{'dry-run ' if dry_run else ''}apply {path}"
        return self._call(what, lambda: self._apply_patch(http, path, doc, manager, dry_run=dry_run))

    @staticmethod
    def _apply_patch(
        http: Any, path: str, doc: Mapping[str, Any], manager: str = "deployer-drift", *, dry_run: bool = True
    ) -> Any:
        import json as _json

        params = {"fieldManager": manager, "force": "true", **({"dryRun": "All"} if dry_run else {})}
        applied = http.patch(
            path,
            params=params,
            content=_json.dumps(doc),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
        if applied.status_code in REFUSING_STATUS:
            return Refused(_response_message(applied, f"HTTP {applied.status_code}"))
        applied.raise_for_status()
        return applied.json()


def _get_or_none(http: Any, path: str) -> Any:
    """The object at `path` (raw JSON), or None when there is none (404)."""
    response = http.get(path)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()
