"""`deployer export flux`, offline: what Flux would compute from the export is what deployer computes.

For every release of the example and of the benchmark specs: the values helm-controller derives from
the HelmRelease (valuesFrom, then inline values) equal `deployer values`; `helm template` of the
exported chart with those values equals `deployer template`; every object fits its CRD's schema.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from deployer.flux import split_sensitive
from deployer.merge import merge_values
from testing import tools
from testing.cli import run
from testing.example import copy_example
from testing.flux import flux_values, load_dir, load_objects, validate

ROOT = Path(__file__).resolve().parent.parent
GIT_URL = "http://127.0.0.1:1/shop.git"


def git_init(path: Path, *, origin: str | None = None) -> None:
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=path,
            check=True,
            capture_output=True,
        )

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", "spec")
    if origin:
        git("remote", "add", "origin", origin)


@pytest.fixture
def example(tmp_path: Path) -> Path:
    project = copy_example(tmp_path / "shop")
    git_init(project)
    return project


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import specs  # benchmarks/specs.py
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    project, _ = specs.generate(tmp_path_factory.mktemp("bench"), 10, tools.helm_binary(3))
    git_init(project)
    return project


BENCH_ENV = {"BENCH_NS": "bx"}


def export(
    project: Path, env: str, out: Path, environ: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    result = run(
        ["export", "flux", "-e", env, "--output-dir", str(out), "--git-url", GIT_URL, "--git-ref", "main"],
        project,
        environ,
    )
    assert result.code == 0, result.err
    return load_dir(out)


def releases(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == "HelmRelease"]


def key(release: Mapping[str, Any]) -> str:
    return f"{release['spec']['targetNamespace']}/{release['spec']['releaseName']}"


CASES = [("example", "dev"), ("example", "staging"), ("example", "prod"), ("bench", "dev"), ("bench", "prod")]


@pytest.mark.parametrize(("spec", "env"), CASES)
def test_the_values_flux_computes_from_the_export_are_deployers_values(
    spec: str, env: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    project: Path = request.getfixturevalue(spec)
    environ = BENCH_ENV if spec == "bench" else {}
    objects = export(project, env, tmp_path / "out", environ)
    assert releases(objects)
    for release in releases(objects):
        result = run(["values", "-e", env, key(release), "--show-secrets"], project, environ)
        assert result.code == 0, result.err
        assert flux_values(release, objects) == yaml.safe_load(result.out), key(release)


def test_sensitive_values_are_only_in_the_secret(example: Path, tmp_path: Path) -> None:
    objects = export(example, "prod", tmp_path / "out")
    api = next(r for r in releases(objects) if r["metadata"]["name"] == "api")
    assert "apiKey" not in api["spec"]["values"].get("secret", {})
    assert api["spec"]["valuesFrom"] == [{"kind": "Secret", "name": "api-values", "valuesKey": "values.yaml"}]
    secret_file = tmp_path / "out" / "secrets" / "secret-api-values.yaml"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert (tmp_path / "out" / "secrets" / ".gitignore").read_text().endswith("*\n")
    (secret,) = load_objects(secret_file.read_text())
    assert yaml.safe_load(secret["stringData"]["values.yaml"]) == {
        "secret": {"apiKey": "prod-api-key-from-vault"}
    }
    committed = "".join(p.read_text() for p in (tmp_path / "out").glob("*.yaml"))
    assert "prod-api-key-from-vault" not in committed


def test_stdout_export_needs_a_secrets_file_for_sensitive_values(example: Path, tmp_path: Path) -> None:
    argv = ["export", "flux", "-e", "dev", "--git-url", GIT_URL]
    refused = run(argv, example)
    assert refused.code == 1
    assert "--secrets-file" in refused.err
    assert refused.out == ""
    done = run([*argv, "--secrets-file", str(tmp_path / "s.yaml")], example)
    assert done.code == 0, done.err
    assert "dev-api-key" not in done.out
    assert "dev-api-key" in (tmp_path / "s.yaml").read_text()
    assert "do not commit it as it is" in done.err
    assert "bump the version in Chart.yaml" in done.err


def test_an_existing_secrets_file_is_made_private_before_it_is_overwritten(
    example: Path, tmp_path: Path
) -> None:
    target = tmp_path / "s.yaml"
    target.write_text("an older, longer export that must not survive\n" * 50)
    target.chmod(0o644)
    done = run(["export", "flux", "-e", "dev", "--git-url", GIT_URL, "--secrets-file", str(target)], example)
    assert done.code == 0, done.err
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    text = target.read_text()
    assert "dev-api-key" in text and "older" not in text


def test_an_interval_flux_would_refuse_and_an_output_dir_that_is_a_file_are_refused_first(
    example: Path, tmp_path: Path
) -> None:
    argv = ["export", "flux", "-e", "dev", "--git-url", GIT_URL, "--secrets-file", str(tmp_path / "s")]
    bad = run([*argv, "--interval", "ten minutes"], example)
    assert bad.code == 1 and bad.out == ""
    assert "error: --interval 'ten minutes' is not a duration Flux accepts" in bad.err
    assert not (tmp_path / "s").exists()
    a_file = tmp_path / "a-file"
    a_file.write_text("keep me\n")
    refused = run(["export", "flux", "-e", "dev", "--git-url", GIT_URL, "--output-dir", str(a_file)], example)
    assert refused.code == 1
    assert f"error: --output-dir {a_file} exists and is not a directory" in refused.err
    assert a_file.read_text() == "keep me\n"
    good = run([*argv, "--interval", "1m30s"], example)
    assert good.code == 0, good.err
    assert "interval: 1m30s" in good.out


def test_an_unwritable_secrets_file_writes_nothing(example: Path, tmp_path: Path) -> None:
    argv = ["export", "flux", "-e", "dev", "--git-url", GIT_URL]
    result = run([*argv, "--secrets-file", str(tmp_path / "missing-dir" / "s.yaml")], example)
    assert result.code == 1
    assert result.out == ""
    assert f"cannot write {tmp_path / 'missing-dir' / 's.yaml'}: No such file or directory" in result.err


@pytest.mark.parametrize(("spec", "env"), [("example", "dev"), ("example", "prod"), ("bench", "dev")])
def test_helm_template_of_the_export_equals_deployer_template(
    spec: str, env: str, request: pytest.FixtureRequest, tmp_path: Path, cache: Path
) -> None:
    project: Path = request.getfixturevalue(spec)
    helm = tools.helm_binary(3)
    environ = {**(BENCH_ENV if spec == "bench" else {}), "DEPLOYER_HELM": str(helm)}
    objects = export(project, env, tmp_path / "out", environ)
    expected = run(["template", "-e", env, "--output-dir", str(tmp_path / "rendered")], project, environ)
    assert expected.code == 0, expected.err
    for release in releases(objects):
        chart_spec = release["spec"]["chart"]["spec"]
        chart = project / chart_spec["chart"]
        if chart_spec["sourceRef"]["kind"] == "HelmRepository":
            # The example's worker: the locked version, from its repository's files (charts/repo).
            chart = project / "charts" / "repo" / f"{chart_spec['chart']}-{chart_spec['version']}.tgz"
        elif (
            yaml.safe_load((chart / "Chart.yaml").read_text()).get("dependencies")
            and not (chart / "charts").is_dir()
        ):
            subprocess.run([str(helm), "dependency", "build", str(chart)], check=True, capture_output=True)
        values = tmp_path / "values.yaml"
        values.write_text(yaml.safe_dump(flux_values(release, objects)))
        name, namespace = release["spec"]["releaseName"], release["spec"]["targetNamespace"]
        rendered = subprocess.run(
            [str(helm), "template", name, str(chart), "--namespace", namespace, "--values", str(values)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "HELM_CACHE_HOME": str(cache / "h"), "HELM_CONFIG_HOME": str(cache / "h")},
        ).stdout
        assert rendered == (tmp_path / "rendered" / f"{namespace}--{name}.yaml").read_text(), key(release)


@pytest.mark.parametrize(("spec", "env"), CASES)
def test_every_exported_object_fits_its_crd(
    spec: str, env: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    project: Path = request.getfixturevalue(spec)
    objects = export(project, env, tmp_path / "out", BENCH_ENV if spec == "bench" else {})
    for obj in objects:
        if obj["kind"] != "Secret":
            validate(obj)


SETTINGS_SPEC = """\
repositories:
  - {name: stable, url: https://charts.example.com/stable}
  - {name: reg, url: oci://127.0.0.1:5000/charts, plainHttp: true}
defaults: {namespace: apps, timeout: 60}
environments: {dev: {}}
releases:
  - {name: db, chart: stable/postgres, version: "1.2.3", atomic: true, labels: {tier: data}}
  - {name: api, chart: reg/api, version: "0.1.0", needs: [db, cache], wait: false}
  - {name: api, namespace: other, chart: ./charts/x, needs: [apps/api]}
  - {name: cache, chart: stable/redis, version: "2.0.0", installed: false}
"""


def test_spec_settings_become_helmrelease_settings(tmp_path: Path) -> None:
    (tmp_path / "deployer.yaml").write_text(SETTINGS_SPEC)
    (tmp_path / "charts" / "x").mkdir(parents=True)
    (tmp_path / "charts" / "x" / "Chart.yaml").write_text("apiVersion: v2\nname: x\nversion: 0.1.0\n")
    git_init(tmp_path, origin="https://git.example.com/ops/apps.git")
    result = run(["export", "flux", "-e", "dev"], tmp_path)
    assert result.code == 0, result.err
    objects = load_objects(result.out)
    for obj in objects:
        validate(obj)
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("GitRepository", tmp_path.name.lower().replace("_", "-")),
        ("HelmRepository", "reg"),
        ("HelmRepository", "stable"),
        ("HelmRelease", "db"),
        ("HelmRelease", "apps-api"),
        ("HelmRelease", "other-api"),
    ]
    git_repo, reg, stable, db, api, other = objects
    assert git_repo["spec"]["url"] == "https://git.example.com/ops/apps.git"
    assert git_repo["spec"]["ref"] == {"branch": "main"}
    assert reg["spec"] == {
        "interval": "10m",
        "type": "oci",
        "url": "oci://127.0.0.1:5000/charts",
        "insecure": True,
    }
    assert stable["spec"] == {"interval": "10m", "url": "https://charts.example.com/stable"}
    assert db["metadata"]["labels"]["tier"] == "data"
    assert db["spec"]["chart"]["spec"]["version"] == "1.2.3"
    assert db["spec"]["install"]["remediation"] == {"retries": 0, "remediateLastFailure": True}
    assert db["spec"]["upgrade"]["remediation"]["strategy"] == "rollback"
    assert db["spec"]["timeout"] == "60s"
    assert (api["spec"]["releaseName"], api["spec"]["targetNamespace"], api["spec"]["storageNamespace"]) == (
        "api",
        "apps",
        "apps",
    )
    assert api["spec"]["install"]["disableWait"] and api["spec"]["upgrade"]["disableWait"]
    assert "remediation" not in api["spec"]["install"]
    assert api["spec"]["dependsOn"] == [{"name": "db", "namespace": "flux-system"}]
    assert other["spec"]["dependsOn"] == [{"name": "apps-api", "namespace": "flux-system"}]
    assert other["spec"]["chart"]["spec"]["chart"] == "./charts/x"
    assert other["spec"]["chart"]["spec"]["reconcileStrategy"] == "ChartVersion"
    assert "export: apps/cache is not installed in 'dev': omitted" in result.err
    assert "apps/api needs apps/cache, which is not installed here" in result.err


def test_helm_release_flags_become_helmrelease_fields_that_fit_the_crd(tmp_path: Path) -> None:
    spec = SETTINGS_SPEC.replace(
        "defaults: {namespace: apps, timeout: 60}",
        "defaults: {namespace: apps, timeout: 60, historyMax: 3, cleanupOnFail: true}",
    ).replace(
        "labels: {tier: data}}",
        "labels: {tier: data}, force: true, disableHooks: true, skipSchemaValidation: true,\n"
        "     createNamespace: false, takeOwnership: true}",
    )
    (tmp_path / "deployer.yaml").write_text(spec)
    (tmp_path / "charts" / "x").mkdir(parents=True)
    (tmp_path / "charts" / "x" / "Chart.yaml").write_text("apiVersion: v2\nname: x\nversion: 0.1.0\n")
    git_init(tmp_path, origin="https://git.example.com/ops/apps.git")
    result = run(["export", "flux", "-e", "dev"], tmp_path)
    assert result.code == 0, result.err
    objects = {o["metadata"]["name"]: o for o in load_objects(result.out) if o["kind"] == "HelmRelease"}
    for obj in objects.values():
        validate(obj)
    db = objects["db"]["spec"]
    assert db["maxHistory"] == 3
    assert db["install"]["createNamespace"] is False
    assert db["install"]["disableHooks"] and db["upgrade"]["disableHooks"] and db["uninstall"]["disableHooks"]
    assert db["install"]["disableSchemaValidation"] and db["upgrade"]["disableSchemaValidation"]
    assert db["upgrade"]["force"] and db["rollback"]["force"]
    assert db["upgrade"]["cleanupOnFail"] and db["rollback"]["cleanupOnFail"]
    api = objects["apps-api"]["spec"]
    assert api["install"]["createNamespace"] is True and "force" not in api.get("upgrade", {})
    assert "apps/db: takeOwnership has no HelmRelease field" in result.err


def test_local_charts_without_an_origin_or_git_url_are_refused(example: Path) -> None:
    result = run(["export", "flux", "-e", "dev", "--secrets-file", "/dev/null"], example)
    assert result.code == 1
    assert "no 'origin' remote" in result.err and "--git-url" in result.err


def test_the_export_is_stable(example: Path, tmp_path: Path) -> None:
    first = export(example, "staging", tmp_path / "a")
    second = export(example, "staging", tmp_path / "b")
    assert first == second
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    helmreleases = ["helmrelease-api.yaml", "helmrelease-platform-config.yaml", "helmrelease-worker.yaml"]
    assert names == sorted(["gitrepository-shop.yaml", "helmrepository-shop.yaml", *helmreleases, "secrets"])


_keys = st.sampled_from(["a", "b", "c", "d.e"])
_values = st.recursive(
    st.none() | st.integers() | st.text(max_size=3) | st.lists(st.integers(), max_size=2),
    lambda inner: st.dictionaries(_keys, inner, max_size=3),
    max_leaves=10,
)


@given(
    st.dictionaries(_keys, _values, max_size=4),
    st.lists(st.sampled_from(["a", "b.c", "a.b", "d.e", "c.a.b"])),
)
def test_valuesfrom_then_inline_gives_back_the_merged_values(
    values: dict[str, Any], sensitive: list[str]
) -> None:
    inline, secret = split_sensitive(values, sensitive)
    assert merge_values(secret, inline) == values
