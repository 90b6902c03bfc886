"""Helm's release records: every Secret (or ConfigMap, with HELM_DRIVER=configmap) labelled
owner=helm, in one cluster-wide list, or one list per namespace when RBAC forbids that one.
deployer/observed.py decodes them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deployer.kubeconn import Connection, KubeError, _response_message


class ReleaseRecords(Connection):
    def helm_release_secrets(self, namespaces: list[str]) -> tuple[list[dict[str, Any]], str]:
        """Every Helm release record (owner=helm) in one cluster-wide list, or one list per namespace
        when RBAC forbids the cluster-wide one: Secrets, or ConfigMaps when helm stores its releases
        there (HELM_DRIVER=configmap). Returns the raw objects, each with its `kind`, and how they
        were read."""
        if self.reader() is not None:
            return self._read_releases(namespaces)
        from lightkube import ALL_NS
        from lightkube.resources.core_v1 import ConfigMap, Secret

        client = self.client()
        resource, plural = (
            (ConfigMap, "ConfigMaps") if self.target.driver == "configmap" else (Secret, "Secrets")
        )
        return self._cluster_or_namespaces(
            plural, namespaces, lambda ns: _list_or_raise(client, resource, ALL_NS if ns is None else ns)
        )

    def _read_releases(self, namespaces: list[str]) -> tuple[list[dict[str, Any]], str]:
        """helm_release_secrets through the standard-library reader: the same lists, raw JSON."""
        from deployer.kubehttp import StatusError

        kind, plural = (
            ("ConfigMap", "ConfigMaps") if self.target.driver == "configmap" else ("Secret", "Secrets")
        )
        resource = f"{kind.lower()}s"

        def listing(prefix: str) -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = []
            token = ""
            while True:  # in pages, as client-go lists: a cluster of many releases is many MiB
                query = "labelSelector=owner%3Dhelm&limit=500" + (f"&continue={token}" if token else "")
                try:
                    page = self._get(f"{prefix}/{resource}?{query}")
                except StatusError as exc:
                    if exc.response.status_code == 403:
                        raise _Forbidden(_response_message(exc.response, "forbidden")) from None
                    raise
                for obj in page.get("items") or []:
                    meta = obj.get("metadata") or {}
                    items.append(
                        {
                            "kind": kind,
                            "metadata": {
                                "name": meta.get("name"),
                                "namespace": meta.get("namespace"),
                                "labels": meta.get("labels") or {},
                            },
                            "data": obj.get("data") or {},
                        }
                    )
                token = (page.get("metadata") or {}).get("continue") or ""
                if not token:
                    return items

        return self._cluster_or_namespaces(
            plural, namespaces, lambda ns: listing("/api/v1" if ns is None else f"/api/v1/namespaces/{ns}")
        )

    def _cluster_or_namespaces(
        self, plural: str, namespaces: list[str], list_in: Callable[[str | None], list[dict[str, Any]]]
    ) -> tuple[list[dict[str, Any]], str]:
        """`list_in(None)` (every namespace), or when RBAC forbids it `list_in(ns)` for each one."""
        try:
            return self._call(f"list {plural} in all namespaces", lambda: list_in(None)), "cluster"
        except _Forbidden:
            pass
        items = []
        for ns in sorted(set(namespaces)):
            try:
                items += self._call(f"list {plural} in namespace {ns}", lambda ns=ns: list_in(ns))
            except _Forbidden as exc:
                raise KubeError(
                    f"not allowed to list {plural} in namespace {ns}: {exc}",
                    hint=f"deployer reads Helm's release {plural} (label owner=helm); grant list on "
                    f"{plural.lower()}",
                ) from None
        return items, "namespaces"


class _Forbidden(Exception):
    pass


def _list_or_raise(client: Any, resource: Any, namespace: Any) -> list[dict[str, Any]]:
    from lightkube import ApiError

    try:
        objs = list(client.list(resource, namespace=namespace, labels={"owner": "helm"}))
    except ApiError as exc:
        if exc.status.code == 403:
            raise _Forbidden(exc.status.message) from None
        raise
    return [
        {
            "kind": resource.__name__,
            "metadata": {
                "name": o.metadata.name,
                "namespace": o.metadata.namespace,
                "labels": o.metadata.labels or {},
            },
            "data": o.data or {},
        }
        for o in objs
    ]
