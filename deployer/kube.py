"""The Kubernetes API edge: one lightkube client for the target deployer/kubeconfig.py resolved (as
helm does), and the few reads deployer needs (version, discovery, Helm's release records in one list).

Nothing outside this module imports lightkube.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from deployer.errors import DeployerError
from deployer.kubeconfig import KubeconfigError, KubeTarget, resolve_target

__all__ = ["Cluster", "KubeError", "KubeTarget", "LeaseConflict", "LeaseRecord", "resolve_target"]

log = logging.getLogger("deployer.kube")


class KubeError(DeployerError):
    """The cluster could not be read (unreachable, unauthorised, ...)."""


# What the API server answers when it refuses an object itself (not the caller's access): 400 Bad
# Request (e.g. an admission webhook's denial), 422 Invalid (validation, an immutable field).
REFUSING_STATUS = (400, 422)


@dataclass(frozen=True)
class Refused:
    """The API server refused an object (in a dry run): its own explanation."""

    message: str


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


@dataclass
class Cluster:
    """A connection to one cluster, counting the API requests it makes."""

    target: KubeTarget
    timeout: float = 30.0
    requests: int = 0
    resources: dict[tuple[str, str], tuple[str, bool]] = field(default_factory=dict)
    _client: Any = field(default=None, repr=False)
    _version: str | None = field(default=None, repr=False)
    _reader: Any = field(default=None, repr=False)  # deployer/kubehttp.py's Reader, False: none

    def reader(self) -> Any:
        """The standard-library reader for plain GETs (None when this kubeconfig needs lightkube)."""
        if self._reader is None:
            from deployer import kubehttp

            self._reader = (
                kubehttp.for_target(
                    self.target.entry("cluster")[1], self.target.entry("user")[1], self.timeout
                )
                or False
            )
        return self._reader or None

    def _get(self, path: str, accept: str = "application/json") -> Any:
        reader = self.reader()
        self.requests += 1
        log.debug("kubernetes GET %s", path)
        return reader.get(path, accept)

    def client(self) -> Any:
        if self._client is None:
            import httpx2
            from lightkube import Client, KubeConfig

            try:
                kube = KubeConfig.from_dict(_lightkube_config(self.target))
                self._client = Client(kube, timeout=httpx2.Timeout(self.timeout), field_manager="deployer")
            except Exception as exc:  # TLS material that does not load, a field lightkube rejects
                name, _ = self.target.entry("cluster")
                raise KubeconfigError(
                    file=self.target.file_of("cluster"),
                    kind="cluster",
                    entry=name,
                    problem=f"cannot set up the connection: {_one_line(exc)}",
                ) from None
            http = self._client._client._client  # lightkube keeps its httpx client here
            http.event_hooks["request"].append(self._count)
        return self._client

    def _count(self, request: Any) -> None:
        self.requests += 1
        log.debug("kubernetes %s %s", request.method, request.url)

    def _call(self, what: str, fn: Any) -> Any:
        """Run one API request; every error it can raise becomes a KubeError naming `what` (the verb
        and the resource) and the HTTP status. (lightkube and httpx2 are imported only to classify an
        error: a plan's reads do not load them.)"""
        from deployer.kubehttp import StatusError

        try:
            return fn()
        except StatusError as exc:
            raise self._refused(what, exc) from None
        except Exception as exc:
            if type(exc).__module__.startswith(("httpx", "lightkube")):
                import httpx2
                from lightkube import ConfigError

                if isinstance(exc, httpx2.HTTPStatusError):  # lightkube's ApiError is one too
                    raise self._refused(what, exc) from None
                if isinstance(exc, ConfigError):  # while authenticating: an exec plugin failed, ...
                    name, _ = self.target.entry("user")
                    raise KubeconfigError(
                        file=self.target.file_of("user"),
                        kind="user",
                        entry=name,
                        problem=f"cannot authenticate to {what}: {_one_line(exc)}",
                    ) from None
            if type(exc).__module__.startswith(("httpx", "httpcore", "ssl")) or isinstance(exc, OSError):
                raise KubeError(
                    f"cannot reach the Kubernetes API at {self.target.server} "
                    f"(context '{self.target.context}') to {what}: {exc}",
                    hint="check that the cluster is up and the kubeconfig/context are right",
                ) from None
            raise

    def _refused(self, what: str, exc: Any) -> KubeError:
        code, reason = exc.response.status_code, exc.response.reason_phrase
        return KubeError(
            f"Kubernetes API refused to {what}: HTTP {code} {reason}: {_status_message(exc)}",
            hint=f"check your access to context '{self.target.context}' ({self.target.server})",
        )

    def raw_get(self, path: str, accept: str = "application/json") -> Any:
        if self.reader() is not None:
            return self._call(f"read {path}", lambda: self._get(path, accept))
        client = self.client()
        http = client._client._client

        def get() -> Any:
            response = http.get(path, headers={"Accept": accept})
            response.raise_for_status()
            return response.json()

        return self._call(f"read {path}", get)

    def version(self) -> str:
        """The server's gitVersion (`v1.35.4`), asked once per connection."""
        if self._version is None:
            self._version = str(self.raw_get("/version")["gitVersion"])
        return self._version

    def validates_fields(self) -> bool:
        return validates_fields(self.version())

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

    # The rollout watch and the failure diagnosis (deployer/rollout.py decides what to follow).

    def list_collection(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """One list of a collection (`/apis/apps/v1/namespaces/ns/deployments`), raw JSON."""
        http = self.client()._client._client

        def get() -> Any:
            response = http.get(path, params=dict(params or {}))
            response.raise_for_status()
            return response.json()

        result: dict[str, Any] = self._call(f"list {path}", get)
        return result

    def watch(
        self, path: str, opened: Any, resource_version: str = ""
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Follow a collection with one watch request: (type, object) for each ADDED, MODIFIED,
        DELETED (and BOOKMARK) event; without a resourceVersion, every existing object first, as
        ADDED. `opened` receives the streaming response, so another thread can close it to stop."""
        import json as _json

        import httpx2

        http = self.client()._client._client
        params = {"watch": "true", "allowWatchBookmarks": "true"}
        if resource_version:
            params["resourceVersion"] = resource_version
        # No read timeout: a watch is quiet for as long as nothing changes.
        with http.stream(
            "GET", path, params=params, timeout=httpx2.Timeout(None, connect=self.timeout)
        ) as response:
            opened(response)
            response.raise_for_status()
            for line in response.iter_lines():
                if line.strip():
                    event = _json.loads(line)
                    yield str(event.get("type", "")), event.get("object") or {}

    def pod_log(self, namespace: str, pod: str, container: str, *, previous: bool, tail: int) -> str:
        """The last `tail` lines of a container's log (its previous run's with `previous`), through
        the API server (which asks the node's kubelet); "" when there is none."""
        http = self.client()._client._client
        path = f"/api/v1/namespaces/{namespace}/pods/{pod}/log"
        params = {"container": container, "tailLines": str(tail), "limitBytes": str(64 * 1024)}
        if previous:
            params["previous"] = "true"

        def get() -> str:
            response = http.get(path, params=params)
            response.raise_for_status()
            return str(response.text)

        result: str = self._call(f"read the log of pod {namespace}/{pod} container {container}", get)
        return result

    # The run lock's Lease (deployer/lock.py decides; these only read and write, by raw JSON, so the
    # MicroTime strings come back exactly as they were written).

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
        try:
            items = self._call(
                f"list {plural} in all namespaces", lambda: _list_or_raise(client, resource, ALL_NS)
            )
            return items, "cluster"
        except _Forbidden:
            pass
        items = []
        for ns in sorted(set(namespaces)):
            try:
                items += self._call(
                    f"list {plural} in namespace {ns}", lambda ns=ns: _list_or_raise(client, resource, ns)
                )
            except _Forbidden as exc:
                raise KubeError(
                    f"not allowed to list {plural} in namespace {ns}: {exc}",
                    hint=f"deployer reads Helm's release {plural} (label owner=helm); grant list on "
                    f"{plural.lower()}",
                ) from None
        return items, "namespaces"

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

        try:
            return self._call(f"list {plural} in all namespaces", lambda: listing("/api/v1")), "cluster"
        except _Forbidden:
            pass
        items = []
        for ns in sorted(set(namespaces)):
            try:
                items += self._call(
                    f"list {plural} in namespace {ns}", lambda ns=ns: listing(f"/api/v1/namespaces/{ns}")
                )
            except _Forbidden as exc:
                raise KubeError(
                    f"not allowed to list {plural} in namespace {ns}: {exc}",
                    hint=f"deployer reads Helm's release {plural} (label owner=helm); grant list on "
                    f"{plural.lower()}",
                ) from None
        return items, "namespaces"


def interrupt(response: Any) -> None:
    """End a streaming response (a watch) that another thread is reading: its socket is shut down,
    which wakes a blocked read (closing alone does not, on Linux); the reader closes the response."""
    import socket

    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's, under any TLS layer
            return
        except OSError:  # not connected any more: the reader has ended already
            return
    response.close()


def validates_fields(version: str) -> bool:
    """True when an API server of this gitVersion validates fields itself (the `fieldValidation`
    parameter, GA in Kubernetes 1.27). helm's client-side "OpenAPI validation" then validates
    nothing: kubectl's ParamVerifyingSchema (k8s.io/kubectl pkg/validation/schema.go) only asks the
    server's OpenAPI whether it supports the parameter and skips its own schema check when it does,
    and that question costs helm about 0.2 s of CPU per install or upgrade. False when the version
    cannot be read (helm keeps its check)."""
    found = re.match(r"v?(\d+)\.(\d+)", version)
    return found is not None and (int(found[1]), int(found[2])) >= (1, 27)


def _lightkube_config(target: KubeTarget) -> dict[str, Any]:
    """The target's context, cluster and user as lightkube reads them: paths are absolute already;
    a context without a user gets an empty one (anonymous, as client-go allows), and exec plugins
    of client.authentication.k8s.io/v1 are run as v1beta1 (lightkube checks the version, then
    reads status.token, which both versions return)."""
    cluster_name, cluster = target.entry("cluster")
    user_name, user = target.entry("user")
    if (
        isinstance(user.get("exec"), dict)
        and user["exec"].get("apiVersion") == "client.authentication.k8s.io/v1"
    ):
        user["exec"] = {**user["exec"], "apiVersion": "client.authentication.k8s.io/v1beta1"}
    context = {"cluster": cluster_name, "user": user_name or "anonymous"}
    return {
        "clusters": [{"name": cluster_name, "cluster": cluster}],
        "users": [{"name": user_name or "anonymous", "user": user}],
        "contexts": [{"name": target.context, "context": context}],
        "current-context": target.context,
    }


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class _Forbidden(Exception):
    pass


def _status_message(exc: Any) -> str:
    """The API's own explanation (a metav1.Status message), else the response text."""
    status = getattr(exc, "status", None)
    if status is not None and getattr(status, "message", None):
        return str(status.message)
    return _response_message(exc.response, "(no message)")


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


def _response_message(response: Any, fallback: str) -> str:
    """A response's metav1.Status message, else its text (the start of it), else `fallback`."""
    try:
        body = response.json()
    except Exception:  # not JSON: a proxy's error page, an empty body
        return " ".join(response.text.split())[:200] or fallback
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return fallback


def _get_or_none(http: Any, path: str) -> Any:
    """The object at `path` (raw JSON), or None when there is none (404)."""
    response = http.get(path)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()
