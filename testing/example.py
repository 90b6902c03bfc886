"""Copies of the repository's example project for tests, isolated per test: its own namespace and
its own environment names, so that tests sharing one cluster never see each other's releases.

The example's worker chart comes from the chart repository committed in charts/repo/, which
deployer.yaml names at a fixed loopback port (tools/demo serves it there). A copy names instead
this test process's own server of the same directory, on a free port (tests of several checkouts
run at once on one machine), and its deployer.lock.yaml is rewritten to match: the same versions
and digests, under the copy's namespace, environment names and repository URL."""

from __future__ import annotations

import re
import shutil
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_REPOSITORY_URL = "http://127.0.0.1:8879"

_server_lock = threading.Lock()
_served: list[str] = []


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def example_repository_url() -> str:
    """The URL of charts/repo served for this process, started the first time it is asked for and
    never stopped: a daemon thread that ends with the process (a server shut down at interpreter
    exit would wait for a thread that no longer runs)."""
    with _server_lock:
        if not _served:
            handler = partial(_Quiet, directory=str(ROOT / "charts" / "repo"))
            server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            _served.append(f"http://127.0.0.1:{server.server_address[1]}")
        return _served[0]


def copy_example(dst: Path, *, namespace: str = "shop", env_suffix: str = "") -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "deployer.yaml", dst / "deployer.yaml")
    shutil.copytree(ROOT / "values", dst / "values")
    # No *.tgz: a chart's built dependencies (charts/web/charts/, not in Git) stay behind.
    shutil.copytree(ROOT / "charts", dst / "charts", ignore=shutil.ignore_patterns("*.tgz"))
    shutil.copytree(ROOT / "charts" / "repo", dst / "charts" / "repo", dirs_exist_ok=True)
    for env_dir in (ROOT / "environments").iterdir():
        shutil.copytree(env_dir, dst / "environments" / f"{env_dir.name}{env_suffix}")
    url = example_repository_url()
    spec = (dst / "deployer.yaml").read_text().replace("namespace: shop", f"namespace: {namespace}")
    spec = spec.replace(EXAMPLE_REPOSITORY_URL, url)
    lock = (ROOT / "deployer.lock.yaml").read_text().replace(EXAMPLE_REPOSITORY_URL, url)
    lock = re.sub(r'^  "shop/', f'  "{namespace}/', lock, flags=re.M)
    if env_suffix:
        spec = re.sub(r"^  (dev|staging|prod):", rf"  \1{env_suffix}:", spec, flags=re.M)
        lock = re.sub(r'"(dev|staging|prod)"', rf'"\1{env_suffix}"', lock)
    (dst / "deployer.yaml").write_text(spec)
    (dst / "deployer.lock.yaml").write_text(lock)
    return dst
