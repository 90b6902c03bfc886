"""`verify:` a repository chart's provenance (its PGP-signed .prov, as `helm --verify`), against a real
chart repository on loopback and both helm majors: a chart signed by a key of the keyring renders, on
the first pull and from the cache; a chart signed by another key, or not signed, is refused before
anything is rendered. The keyrings in tests/data/provenance are throwaway test keys (no passphrase)."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.chartrepo import ChartRepo, make_chart, serve
from testing.cli import Result, run

pytestmark = pytest.mark.helm

KEYS = Path(__file__).parent / "data" / "provenance"


def package(helm: Path, chart: Path, destination: Path, *, sign: bool) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    signing = (
        ["--sign", "--key", "deployer test signer", "--keyring", str(KEYS / "secring.gpg")] if sign else []
    )
    subprocess.run(
        [str(helm), "package", str(chart), "--destination", str(destination), *signing], check=True
    )


@pytest.fixture
def repo(tmp_path: Path, helm: Path) -> Iterator[ChartRepo]:
    """hello 1.0.0 signed (hello-1.0.0.tgz.prov beside it), plain 1.0.0 not signed."""
    root = tmp_path / "repo"
    package(helm, make_chart(tmp_path / "src", "hello", "1.0.0"), root, sign=True)
    package(helm, make_chart(tmp_path / "src", "plain", "1.0.0"), root, sign=False)
    with serve(root) as served:
        served.reindex(helm)
        yield served


def project(root: Path, url: str, chart: str, keyring: str = "keys/pubring.gpg") -> Path:
    (root / "keys").mkdir(parents=True)
    for name in ("pubring.gpg", "stranger-pubring.gpg"):
        shutil.copy(KEYS / name, root / "keys" / name)
    (root / "deployer.yaml").write_text(
        textwrap.dedent(f"""\
        repositories:
          - name: shop
            url: {url}
        defaults:
          verify: true
          keyring: {keyring}
        environments: {{dev: {{}}}}
        releases:
          - name: greeter
            chart: shop/{chart}
            version: 1.0.0
          - name: local
            chart: ./local
        """)
    )
    make_chart(root / "src", "local", "0.1.0")
    shutil.move(root / "src" / "local-0.1.0-src" / "local", root / "local")
    return root


def template(helm: Path, proj: Path) -> Result:
    return run(["template", "-e", "dev"], proj, {"DEPLOYER_HELM": str(helm)})


def test_a_signed_chart_renders_and_a_key_not_in_the_keyring_refuses_it_even_from_the_cache(
    tmp_path: Path, helm: Path, repo: ChartRepo, cache: Path
) -> None:
    proj = project(tmp_path / "p", repo.url, "hello")
    first = template(helm, proj)
    assert first.code == 0, first.err
    assert "name: greeter" in first.out and "name: local" in first.out  # defaults' verify skips ./local
    again = template(helm, proj)  # from the cache: its .prov checked again
    assert again.code == 0, again.err
    assert sum(1 for r in repo.requests if r.endswith(".tgz")) == 1
    spec = proj / "deployer.yaml"
    spec.write_text(spec.read_text().replace("keys/pubring.gpg", "keys/stranger-pubring.gpg"))
    refused = template(helm, proj)
    assert refused.code == 1
    assert refused.out == ""
    assert (
        "chart shop/hello 1.0.0: its provenance could not be verified against keyring "
        "keys/stranger-pubring.gpg (verify: true)" in refused.err
    )
    assert "unknown entity" in refused.err and "nothing was rendered" in refused.err
    assert "Traceback" not in refused.err


def test_a_chart_with_no_provenance_file_is_refused_before_anything_is_rendered(
    tmp_path: Path, helm: Path, repo: ChartRepo, cache: Path
) -> None:
    proj = project(tmp_path / "p", repo.url, "plain")
    refused = template(helm, proj)
    assert refused.code == 1
    assert refused.out == ""
    assert "chart shop/plain 1.0.0: its provenance could not be verified" in refused.err
    assert not list(cache.rglob("plain-*.tgz"))  # nothing unverified kept for a later run


def test_verify_on_a_local_chart_and_a_missing_keyring_are_errors_with_their_line(tmp_path: Path) -> None:
    proj = project(tmp_path / "p", "http://127.0.0.1:9", "hello", keyring="keys/missing.gpg")
    result = run(["validate"], proj, {})
    assert result.code == 1
    assert "deployer.yaml:6:12" in result.err
    assert "keyring keys/missing.gpg, which does not exist" in result.err
    spec = proj / "deployer.yaml"
    spec.write_text(spec.read_text().replace("keys/missing.gpg", "keys/pubring.gpg") + "    verify: true\n")
    result = run(["validate"], proj, {})
    assert result.code == 1
    assert "deployer.yaml:14:13" in result.err
    assert "release 'local' sets verify: true, but its chart is a local directory" in result.err
