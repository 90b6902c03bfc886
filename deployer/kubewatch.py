"""Following objects and reading logs, for the rollout watch and the failure diagnosis
(deployer/rollout.py decides what to follow)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from deployer.kubeconn import Connection


class Watches(Connection):
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
