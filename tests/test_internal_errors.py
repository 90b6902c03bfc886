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


# A helm whose `template` output is not UTF-8 (a broken build or wrapper): nothing in deployer
# expects that, so it surfaces as an unforeseen fault. A real executable, not a patched function.
# The tests render only the example's local chart (-l tier=config): this helm cannot pull a chart.
GARBLING_HELM = """#!/bin/sh
case "$1" in
  version) echo v3.22.0 ;;
  template) printf '\\377\\376 not UTF-8\\n' ;;
esac
exit 0
"""
INTERNAL = (
    "error: internal error: UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in position 0: "
    "invalid start byte; rerun with --debug for the traceback\n"
)


@pytest.fixture
def garbling_helm(tmp_path: Path) -> Path:
    path = tmp_path / "bin" / "helm"
    path.parent.mkdir()
    path.write_text(GARBLING_HELM)
    path.chmod(0o755)
    return path


def test_an_unexpected_exception_is_one_line_and_exit_1(
    project: Path, garbling_helm: Path, cache: Path
) -> None:
    env = {"DEPLOYER_HELM": str(garbling_helm), "DEPLOYER_DEBUG": None}
    result = run(["template", "-e", "dev", "-l", "tier=config"], project, env)
    assert (result.code, result.out) == (1, "")
    assert result.err.endswith(INTERNAL)
    assert "Traceback" not in result.err


def test_debug_adds_the_traceback(project: Path, garbling_helm: Path, cache: Path) -> None:
    env = {"DEPLOYER_HELM": str(garbling_helm)}
    result = run(["--debug", "template", "-e", "dev", "-l", "tier=config"], project, env)
    assert result.code == 1
    assert "Traceback (most recent call last):\n" in result.err
    assert result.err.endswith(INTERNAL)


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
