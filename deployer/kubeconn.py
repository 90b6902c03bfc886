"""The connection to one cluster (deployer/kube.py's Cluster is built on it): the client for the
target deployer/kubeconfig.py resolved (as helm does), requests counted, and every error a request
can raise turned into a KubeError naming the request and its HTTP status."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from deployer.errors import DeployerError
from deployer.kubeconfig import KubeconfigError, KubeTarget

log = logging.getLogger("deployer.kube")  # one logger for the whole Kubernetes edge


class KubeError(DeployerError):
    """The cluster could not be read (unreachable, unauthorised, ...)."""


# What the API server answers when it refuses an object itself (not the caller's access): 400 Bad
# Request (e.g. an admission webhook's denial), 422 Invalid (validation, an immutable field).
REFUSING_STATUS = (400, 422)


@dataclass(frozen=True)
class Refused:
    """The API server refused an object (in a dry run): its own explanation."""

    message: str


@dataclass
class Connection:
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
                raise self._entry_error(
                    "cluster", f"cannot set up the connection: {_one_line(exc)}"
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
                    raise self._entry_error(
                        "user", f"cannot authenticate to {what}: {_one_line(exc)}"
                    ) from None
            if type(exc).__module__.startswith(("httpx", "httpcore", "ssl")) or isinstance(exc, OSError):
                raise KubeError(
                    f"cannot reach the Kubernetes API at {self.target.server} "
                    f"(context '{self.target.context}') to {what}: {exc}",
                    hint="check that the cluster is up and the kubeconfig/context are right",
                ) from None
            raise

    def _entry_error(self, kind: str, problem: str) -> KubeconfigError:
        """An error in the kubeconfig's `kind` entry (cluster or user) of the target's context."""
        name, _ = self.target.entry(kind)
        return KubeconfigError(file=self.target.file_of(kind), kind=kind, entry=name, problem=problem)

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


def _status_message(exc: Any) -> str:
    """The API's own explanation (a metav1.Status message), else the response text."""
    status = getattr(exc, "status", None)
    if status is not None and getattr(status, "message", None):
        return str(status.message)
    return _response_message(exc.response, "(no message)")


def _response_message(response: Any, fallback: str) -> str:
    """A response's metav1.Status message, else its text (the start of it), else `fallback`."""
    try:
        body = response.json()
    except Exception:  # not JSON: a proxy's error page, an empty body
        return " ".join(response.text.split())[:200] or fallback
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return fallback
