"""A Git smart-HTTP server on loopback: Debian's `git http-backend` (CGI) behind http.server.

Flux's GitRepository takes only http(s) and ssh URLs; this serves bare repositories under a root
directory read-only (upload-pack), as http://127.0.0.1:PORT/<name>.git. Standard library only, so
tools/sandbox can run it as a script:  python3 testing/gitserve.py ROOT [PORT]
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit


def _backend() -> str:
    exec_path = subprocess.run(["git", "--exec-path"], check=True, capture_output=True, text=True).stdout
    return str(Path(exec_path.strip()) / "git-http-backend")


class _Handler(BaseHTTPRequestHandler):
    root: Path
    backend: str

    def do_GET(self) -> None:
        self._cgi()

    def do_POST(self) -> None:
        self._cgi()

    def _cgi(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": url.path,
            "QUERY_STRING": url.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(length),
            "REMOTE_ADDR": self.client_address[0],
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
        }
        proc = subprocess.run([self.backend], input=body, capture_output=True, env=env, check=False)
        head, _, payload = proc.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = proc.stdout.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


class GitServer:
    """Serves every bare repository under `root`; `publish(dir, name)` makes one from a worktree."""

    def __init__(self, root: Path, port: int = 0) -> None:
        self.root = root
        handler = type("Handler", (_Handler,), {"root": root, "backend": _backend()})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> GitServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def publish(self, worktree: Path, name: str) -> str:
        """Push `worktree`'s current branch to a bare clone named NAME.git; its URL."""
        bare = self.root / f"{name}.git"
        if not bare.exists():
            subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
        subprocess.run(
            ["git", "push", "-q", "--force", str(bare), "HEAD:refs/heads/main"],
            cwd=worktree,
            check=True,
            capture_output=True,
        )
        return f"{self.url}/{name}.git"


if __name__ == "__main__":
    server = GitServer(Path(sys.argv[1]).resolve(), int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    print(server.url, flush=True)
    server.httpd.serve_forever()
