"""A real chart repository on loopback: charts packaged with `helm package`, indexed with
`helm repo index`, served over HTTP by a thread that counts every request."""

from __future__ import annotations

import base64
import shutil
import subprocess
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def make_chart(parent: Path, name: str, version: str, *, extra_template: str = "") -> Path:
    """A small chart whose ConfigMap records the chart version it came from."""
    chart = parent / f"{name}-{version}-src" / name
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        f"apiVersion: v2\nname: {name}\nversion: {version}\nappVersion: '{version}'\n"
    )
    (chart / "values.yaml").write_text("greeting: hello\nreplicas: 1\n")
    (chart / "templates" / "configmap.yaml").write_text(
        textwrap.dedent("""\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: {{ .Release.Name }}
          labels:
            chart: {{ .Chart.Name }}-{{ .Chart.Version }}
        data:
          greeting: {{ .Values.greeting | quote }}
        """)
        + extra_template
    )
    return chart


def package(helm: Path, chart: Path, destination: Path) -> Path:
    destination.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        [str(helm), "package", str(chart), "--destination", str(destination)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return Path(out.strip().rsplit(": ", 1)[-1])


@dataclass
class ChartRepo:
    url: str
    root: Path
    requests: list[str] = field(default_factory=list)
    username: str | None = None
    password: str | None = None

    def reindex(self, helm: Path) -> None:
        subprocess.run([str(helm), "repo", "index", str(self.root), "--url", self.url], check=True)


@contextmanager
def serve(root: Path, *, username: str | None = None, password: str | None = None) -> Iterator[ChartRepo]:
    repo = ChartRepo(url="", root=root, username=username, password=password)

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            repo.requests.append(self.path)
            if username is not None:
                expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="charts"')
                    self.end_headers()
                    return
            super().do_GET()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    repo.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield repo
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def published(tmp: Path, helm: Path, versions: tuple[str, ...] = ("1.0.0", "1.1.0")) -> Iterator[ChartRepo]:
    """A served repository holding chart `hello` at each of `versions` (sources under tmp/src)."""
    root = tmp / "repo"
    for version in versions:
        package(helm, make_chart(tmp / "src", "hello", version), root)
    with serve(root) as served:
        served.reindex(helm)
        yield served


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("charts"), dirs_exist_ok=True)
    return dst
