"""The Kubernetes API's read requests that every plan makes (version, discovery, helm's release
Secrets), over the standard library's HTTPS client.

Why not lightkube for these: importing lightkube and its HTTP stack (httpx2, msgspec) costs more CPU
than a whole `diff` with nothing to do spends on anything else at N=10, and these reads need nothing
but a GET with the kubeconfig's TLS material and bearer token. Every other request (server-side
apply dry runs, the run lock's Lease) still goes through lightkube, created only when one is made.

Covered here: TLS with a CA file or CA data (or insecure-skip-tls-verify), tls-server-name, client
certificates (files or data), a bearer token or tokenFile (re-read on each connection: a kubelet
rotates it), and no user at all. A kubeconfig with anything else (an exec credential plugin, a
proxy-url, basic auth) is left to lightkube: `for_target` returns None for it.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_USER_KEYS = {
    "client-certificate",
    "client-certificate-data",
    "client-key",
    "client-key-data",
    "token",
    "tokenFile",
}
_CLUSTER_KEYS = {
    "server",
    "certificate-authority",
    "certificate-authority-data",
    "insecure-skip-tls-verify",
    "tls-server-name",
    "extensions",
}


@dataclass(frozen=True)
class Response:
    """What an error handler reads of a response (the names httpx's Response gives them)."""

    status_code: int
    reason_phrase: str
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class StatusError(Exception):
    """The API answered with an error status."""

    def __init__(self, response: Response) -> None:
        super().__init__(f"HTTP {response.status_code} {response.reason_phrase}")
        self.response = response


class Reader:
    """GET requests to one API server, on one kept-alive connection."""

    def __init__(self, server: str, context: ssl.SSLContext | None, token: Any, timeout: float) -> None:
        parts = urlsplit(server)
        self.scheme, self.host, self.port = parts.scheme, parts.hostname or "", parts.port
        self.prefix = parts.path.rstrip("/")
        self.context, self.token, self.timeout = context, token, timeout
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def get(self, path: str, accept: str = "application/json") -> Any:
        """The JSON body of GET `path`; StatusError for an error status; OSError when unreachable."""
        with self._lock:
            for attempt in (1, 2):
                conn = self._connection()
                headers = {"Accept": accept, "User-Agent": "deployer"}
                token = self.token()
                if token:
                    headers["Authorization"] = f"Bearer {token}"
                try:
                    conn.request("GET", self.prefix + path, headers=headers)
                    response = conn.getresponse()
                    body = response.read()
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                    self.close()  # a kept-alive connection the server closed: once more, anew
                    if attempt == 2:
                        raise
                    continue
                if response.status >= 400:
                    raise StatusError(
                        Response(response.status, response.reason, body.decode(errors="replace"))
                    )
                return json.loads(body)
        raise AssertionError("unreachable")

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.scheme == "https":
                self._conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=self.context
                )
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def for_target(cluster: Mapping[str, Any], user: Mapping[str, Any], timeout: float) -> Reader | None:
    """A Reader for this kubeconfig cluster and user, or None when it needs what only lightkube does
    (an exec plugin, a proxy, basic auth) or its TLS material does not load (lightkube then says
    why, as it always has)."""
    if set(cluster) - _CLUSTER_KEYS or set(user) - _USER_KEYS or not cluster.get("server"):
        return None
    server = str(cluster["server"])
    if not server.startswith(("https://", "http://")):
        return None
    try:
        context = _tls(cluster, user) if server.startswith("https://") else None
    except (OSError, ssl.SSLError, ValueError):
        return None
    return Reader(server, context, _token_source(user), timeout)


def _tls(cluster: Mapping[str, Any], user: Mapping[str, Any]) -> ssl.SSLContext:
    # The system's CA bundle only when the kubeconfig names no CA: loading it costs ~30 ms of CPU.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cluster.get("insecure-skip-tls-verify"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif cluster.get("certificate-authority-data"):
        context.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    elif cluster.get("certificate-authority"):
        context.load_verify_locations(cafile=str(cluster["certificate-authority"]))
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    cert = _material(user, "client-certificate")
    key = _material(user, "client-key")
    if cert is not None and key is not None:
        _load_chain(context, cert, key)
    if cluster.get("tls-server-name"):
        return _ServerNamed(context, str(cluster["tls-server-name"]))  # type: ignore[return-value]
    return context


def _material(user: Mapping[str, Any], name: str) -> tuple[str, bool] | None:
    """(path, or the decoded PEM text, and whether it is text) of a client certificate or key."""
    if user.get(f"{name}-data"):
        return base64.b64decode(user[f"{name}-data"]).decode(), True
    if user.get(name):
        return str(user[name]), False
    return None


def _load_chain(context: ssl.SSLContext, cert: tuple[str, bool], key: tuple[str, bool]) -> None:
    # ssl reads a certificate chain only from files: PEM given as data goes through a private
    # directory that is removed at once.
    with tempfile.TemporaryDirectory(prefix="deployer-tls-") as tmp:
        paths = []
        for (text, is_data), name in ((cert, "cert.pem"), (key, "key.pem")):
            if not is_data:
                paths.append(text)
                continue
            path = Path(tmp) / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            paths.append(str(path))
        context.load_cert_chain(paths[0], paths[1])


class _ServerNamed:
    """An SSL context that verifies the server under another name (kubeconfig tls-server-name)."""

    def __init__(self, context: ssl.SSLContext, name: str) -> None:
        self._context, self._name = context, name

    def wrap_socket(self, sock: Any, server_hostname: str | None = None, **kwargs: Any) -> Any:
        return self._context.wrap_socket(sock, server_hostname=self._name, **kwargs)

    def __getattr__(self, item: str) -> Any:
        return getattr(self._context, item)


def _token_source(user: Mapping[str, Any]) -> Any:
    if user.get("token"):
        token = str(user["token"])
        return lambda: token
    if user.get("tokenFile"):
        path = Path(str(user["tokenFile"]))
        return lambda: path.read_text().strip()
    return lambda: ""
