"""A real OCI registry on loopback (go-containerregistry's `crane registry serve`, built by
tools/build), for `helm push` and deployer's pulls of oci:// charts."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from testing.ports import free_port
from testing.tools import tool_dir


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)

    def push(self, helm: Path, package: Path, environ: Mapping[str, str]) -> None:
        """`helm push` a packaged chart to oci://HOST/charts (plain HTTP, as the registry serves)."""
        subprocess.run(
            [str(helm), "push", str(package), f"oci://{self.host}/charts", "--plain-http"],
            check=True,
            capture_output=True,
            env=dict(environ),
        )


@contextmanager
def oci_registry(log: Path) -> Iterator[Registry]:
    port = free_port()
    crane = tool_dir("crane") / "crane"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(crane), "registry", "serve", "--address", f"127.0.0.1:{port}"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    registry = Registry(f"127.0.0.1:{port}", proc)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://{registry.host}/v2/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"OCI registry did not start; see {log}") from None
                time.sleep(0.05)
        yield registry
    finally:
        if proc.poll() is None:
            registry.stop()
