"""OCI charts against a real registry on loopback: `helm push`, then a pull through deployer."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from testing.chartrepo import make_chart, package
from testing.cli import run
from testing.registry import oci_registry

pytestmark = [pytest.mark.helm, pytest.mark.registry]


@pytest.mark.parametrize("style", ["oci-url", "oci-repository"])
def test_an_oci_chart_is_pulled_once_and_then_served_from_the_cache(
    tmp_path: Path, helm: Path, cache: Path, style: str
) -> None:
    tgz = package(helm, make_chart(tmp_path / "src", "hello", "2.0.0"), tmp_path / "pkg")
    with oci_registry(tmp_path / "registry.log") as registry:
        registry.push(helm, tgz, {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
        chart = f"oci://{registry.host}/charts/hello" if style == "oci-url" else "local/hello"
        proj = tmp_path / "p"
        proj.mkdir()
        (proj / "deployer.yaml").write_text(
            textwrap.dedent(f"""\
            repositories:
              - name: local
                url: oci://{registry.host}/charts
                plainHttp: true
            environments: {{dev: {{}}}}
            releases:
              - name: greeter
                chart: {chart}
                version: 2.0.0
            """)
        )
        first = run(["template", "-e", "dev"], proj, {"DEPLOYER_HELM": str(helm)})
        assert first.code == 0, first.err
        assert "chart: hello-2.0.0" in first.out
        registry.stop()
        # The registry is gone: the second render can only succeed from deployer's chart cache.
        second = run(["template", "-e", "dev"], proj, {"DEPLOYER_HELM": str(helm)})
        assert second.code == 0, second.err
        assert second.out == first.out
