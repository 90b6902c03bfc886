"""No tracebacks: an unforeseen fault is one line on stderr and exit 1 (the traceback only with
--debug), and an error answer of the Kubernetes API names the request and its HTTP status."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.cli import run
from testing.example import copy_example


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "gitops")


def kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "test",
                "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
                "clusters": [{"name": "test", "cluster": {"server": server}}],
                "users": [{"name": "test", "user": {"token": "t"}}],
            }
        )
    )
    return path


def test_an_unexpected_exception_is_one_line_and_exit_1(project: Path, tmp_path: Path) -> None:
    # A kubeconfig that is YAML but not a mapping: nothing checks for it, so it surfaces as a bug.
    bad = tmp_path / "kubeconfig"
    bad.write_text("- not\n- a mapping\n")
    result = run(["status", "-e", "dev"], project, {"KUBECONFIG": str(bad), "DEPLOYER_DEBUG": None})
    assert result.code == 1
    assert result.err == (
        "error: internal error: AttributeError: 'list' object has no attribute 'get'; "
        "rerun with --debug for the traceback\n"
    )


def test_debug_adds_the_traceback(project: Path, tmp_path: Path) -> None:
    bad = tmp_path / "kubeconfig"
    bad.write_text("- not\n- a mapping\n")
    result = run(["--debug", "status", "-e", "dev"], project, {"KUBECONFIG": str(bad)})
    assert result.code == 1
    assert result.err.startswith("Traceback (most recent call last):\n")
    assert result.err.endswith(
        "error: internal error: AttributeError: 'list' object has no attribute 'get'; "
        "rerun with --debug for the traceback\n"
    )


class _Failing(http.server.BaseHTTPRequestHandler):
    """An API server that answers every request with a metav1.Status 500, as a broken etcd makes it."""

    def do_GET(self) -> None:
        body = json.dumps(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "message": "etcdserver: request timed out",
                "reason": "InternalError",
                "code": 500,
            }
        ).encode()
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def failing_api() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_api_error_names_the_request_and_the_http_status(
    project: Path, tmp_path: Path, failing_api: str
) -> None:
    config = kubeconfig(tmp_path / "kubeconfig", failing_api)
    result = run(["status", "-e", "dev"], project, {"KUBECONFIG": str(config)})
    assert result.code == 1
    assert result.err == (
        "error: Kubernetes API refused to list Secrets in all namespaces: HTTP 500 Internal Server Error: "
        "etcdserver: request timed out\n"
        f"  hint: check your access to context 'test' ({failing_api})\n"
    )
