"""`deployer import helmfile`: for each helmfile.yaml under tests/data/helmfile, the pinned helmfile's
`template` and deployer's `template` after the import render the same objects, object by object."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from testing.chartrepo import make_chart, package, serve
from testing.cli import run, tree_state
from testing.helmfile import (
    DATA,
    assert_same_objects,
    copy_case,
    deployer_template,
    helm_env,
    helmfile_template,
)
from testing.registry import oci_registry

pytestmark = pytest.mark.helm


CASES = {
    "plain": ("helmfile.yaml", ["dev", "prod"], {}),
    "templated": ("helmfile.yaml.gotmpl", ["dev", "prod"], {"IMPORT_NS": "shop"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_deployer_renders_what_helmfile_renders_after_the_import(
    case: str, tmp_path: Path, helm3: Path, helmfile: Path, cache: Path
) -> None:
    state_file, envs, variables = CASES[case]
    project = copy_case(case, tmp_path)
    environ = helm_env(tmp_path, variables)
    result = run(
        ["import", "helmfile", state_file, "--helmfile", str(helmfile), "--helm", str(helm3)],
        project,
        environ,
    )
    assert result.code == 0, result.err
    for env in envs:
        expected = helmfile_template(helmfile, helm3, project / state_file, env, environ)
        assert expected, f"helmfile rendered nothing for {env}"
        if case == "plain":  # its apiVersions: reach the render (a guarded ServiceMonitor) on both sides
            assert "ServiceMonitor" in {kind for _api, kind, _ns, _name in expected}
        assert_same_objects(expected, deployer_template(project, helm3, env, environ))


def test_a_templated_file_keeps_required_env_as_interpolation_and_splits_environments(
    tmp_path: Path, helmfile: Path, helm3: Path
) -> None:
    project = copy_case("templated", tmp_path)
    environ = helm_env(tmp_path, {"IMPORT_NS": "shop", "DEPLOYER_HELM": str(helm3)})
    result = run(
        ["import", "helmfile", "helmfile.yaml.gotmpl", "--helmfile", str(helmfile)], project, environ
    )
    assert result.code == 0, result.err
    spec = yaml.safe_load((project / "deployer.yaml").read_text())
    web = next(r for r in spec["releases"] if r["name"] == "web")
    assert web["namespace"] == "${IMPORT_NS}-web"
    assert web["values"][0] == "values/web.yaml"
    assert spec["environments"]["prod"]["kubeContext"] == "prod-eu-1"
    assert spec["environments"]["dev"]["releases"]["backup"] == {"installed": False}
    prod = yaml.safe_load((project / "environments" / "prod" / "values.yaml").read_text())
    assert prod["web"]["config"]["features"] == ["search"]
    assert prod["web"]["resources"] == {"limits": None}
    assert prod["web"]["greeting"] == "hello-prod"


def test_the_report_lists_what_was_not_carried_over_with_file_and_line(tmp_path: Path) -> None:
    project = copy_case("unsupported", tmp_path)
    result = run(["import", "helmfile"], project)
    assert result.code == 0, result.err
    report = (project / "IMPORT-REPORT.md").read_text()
    for where, what in [
        ("helmfile.yaml:6", "hooks"),  # prepare: imported as preapply, with a line saying so
        ("helmfile.yaml:14", "releases[api].values"),
        ("helmfile.yaml:24", "releases[patched].strategicMergePatches"),
        ("helmfile.yaml:32", "releases[remote].chart"),
    ]:
        assert f"| `{where}` | `{what}` |" in report
        assert f"{where}: {what}: " in result.err
    spec = yaml.safe_load((project / "deployer.yaml").read_text())
    assert "remote" not in [r["name"] for r in spec["releases"]]
    # What deployer's spec now says is carried, with no line: helm's flags and the release's hook.
    assert spec["defaults"] == {
        "createNamespace": False,
        "historyMax": 5,
        "hooks": [{"events": ["preapply"], "command": ["echo"]}],
    }
    assert spec["releases"][0]["hooks"] == [{"events": ["presync"], "command": ["echo", "hello"]}]
    assert "historyMax" not in result.err and "createNamespace" not in result.err


def test_secrets_files_become_values_files_that_deployer_decrypts(tmp_path: Path) -> None:
    project = copy_case("secrets", tmp_path)
    result = run(["import", "helmfile"], project)
    assert result.code == 0, result.err
    spec = yaml.safe_load((project / "deployer.yaml").read_text())
    # helmfile passes values, then secrets (state.go generateValuesFiles)
    assert spec["releases"][0]["values"] == ["values/api.yaml", {"replicas": 2}, "secrets/api.enc.yaml"]


def test_nothing_is_written_when_any_target_exists(tmp_path: Path) -> None:
    project = copy_case("plain", tmp_path)
    (project / "IMPORT-REPORT.md").write_text("mine\n")
    before = tree_state(project)
    result = run(["import", "helmfile"], project)
    assert result.code == 1
    assert "refusing to overwrite IMPORT-REPORT.md" in result.err
    assert tree_state(project) == before


def test_bad_input_is_one_error_with_file_and_line_and_nothing_written(tmp_path: Path) -> None:
    project = tmp_path / "bad"
    project.mkdir()
    (project / "helmfile.yaml").write_text("releases:\n  - name: a\n    chart: [unclosed\n")
    before = tree_state(project)
    result = run(["import", "helmfile"], project)
    assert result.code == 1
    assert result.err.startswith("error: helmfile.yaml:4:1: invalid YAML")
    assert "Traceback" not in result.err
    assert tree_state(project) == before


def test_helmfile_v0_layout_environments_and_releases_in_one_part_imports_with_a_report_line(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    """helmfile v1 refuses this layout; a user migrating an old setup still has it: it is imported as
    helmfile v0 read it, and the report says where and what helmfile v1 wants instead."""
    project = tmp_path / "one-part"
    project.mkdir()
    shutil.copytree(DATA / "charts" / "echo", project / "c")
    state = project / "helmfile.yaml"
    state.write_text("environments:\n  default: {}\nreleases:\n  - name: a\n    chart: ./c\n")
    refused = subprocess.run(
        [str(helmfile), "--helm-binary", str(helm3), "list"],
        capture_output=True,
        text=True,
        check=False,
        cwd=project,
        env=helm_env(tmp_path),
    )
    assert refused.returncode != 0 and "cannot be defined within the same YAML part" in refused.stderr
    result = run(["import", "helmfile"], project)
    assert result.code == 0, result.err
    assert (
        "helmfile.yaml:3: environments and releases in one YAML part: helmfile v0's layout, imported as "
        "v0 read it; helmfile v1 refuses this file: if you keep using helmfile, put a `---` line between "
        "the environments: section and the rest\n"
    ) in result.err
    # Nothing was lost: the import is complete, and the advice is a note, apart from losses.
    assert result.err.startswith("import: everything was carried over\nimport: 1 note(s)"), result.err
    report = (project / "IMPORT-REPORT.md").read_text()
    losses, _, notes = report.partition("## Notes")
    assert "Everything was carried over." in losses and "|" not in losses
    assert "| `helmfile.yaml:3` | `environments and releases in one YAML part` | helmfile v0's" in notes
    spec = yaml.safe_load((project / "deployer.yaml").read_text())
    assert [r["name"] for r in spec["releases"]] == ["a"]
    assert run(["validate"], project).code == 0


def test_a_templated_file_in_helmfile_v0_layout_imports_with_a_report_line(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    """helmfile v1 refuses it; the import hands helmfile a copy with environments: in a part of its
    own, as v1 asks, and says so."""
    project = tmp_path / "v0"
    project.mkdir()
    shutil.copytree(DATA / "charts" / "echo", project / "c")
    (project / "helmfile.yaml.gotmpl").write_text(
        "environments:\n  dev:\n    values: [{size: small}]\n  prod:\n    values: [{size: large}]\n"
        "releases:\n  - name: a\n    chart: ./c\n    values:\n      - size: {{ .Values.size }}\n"
    )
    result = run(
        ["import", "helmfile", "helmfile.yaml.gotmpl", "--helmfile", str(helmfile), "--helm", str(helm3)],
        project,
        helm_env(tmp_path),
    )
    assert result.code == 0, result.err
    assert (
        "helmfile.yaml.gotmpl:6: environments and releases in one YAML part: helmfile v0's layout"
        in result.err
    )
    for env, size in (("dev", "small"), ("prod", "large")):
        overlay = yaml.safe_load((project / "environments" / env / "values.yaml").read_text())
        assert overlay["a"] == {"size": size}


def test_a_templated_file_without_helmfile_is_a_clear_error(tmp_path: Path) -> None:
    project = copy_case("templated", tmp_path)
    result = run(["import", "helmfile", "helmfile.yaml.gotmpl"], project, {"PATH": "/nonexistent"})
    assert result.code == 1
    assert "resolving it needs the helmfile binary" in result.err
    assert not (project / "deployer.yaml").exists()


def test_the_benchmarks_generated_helmfile_imports_with_only_its_keys_concealed_and_renders_the_same(
    tmp_path: Path, helm3: Path, helmfile: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The generated file holds each api's `secrets.apiKey` in clear: the import writes a reference
    for each (one report line each, nothing else left over); with the variables set, deployer
    renders what helmfile renders."""
    monkeypatch.syspath_prepend(str(DATA.parents[2] / "benchmarks"))
    import specs  # benchmarks/specs.py: the helmfile.yaml.gotmpl the benchmarks compare against

    _, project = specs.generate(tmp_path, 10, helm3)
    environ = helm_env(tmp_path, {"BENCH_NS": "bx", "DEPLOYER_HELM": str(helm3)})
    result = run(
        ["import", "helmfile", "helmfile.yaml.gotmpl", "--helmfile", str(helmfile)], project, environ
    )
    assert result.code == 0, result.err
    lines = result.err.splitlines()[1:]
    assert lines and all(
        ".values: secrets." in line and "looks like a secret: written as ${" in line for line in lines
    )
    spec = yaml.safe_load((project / "deployer.yaml").read_text())
    keys: dict[str, str] = {}  # the variables, set to the values helmfile's file holds (benchmarks/specs.py)
    for env in ("", *specs.ENVIRONMENTS):
        if env:
            path = project / "environments" / env / "values.yaml"
            layers = yaml.safe_load(path.read_text()).items() if path.is_file() else []
        else:
            layers = [
                (r["name"], v) for r in spec["releases"] for v in r.get("values", []) if isinstance(v, dict)
            ]
        for name, values in layers:
            for key, ref in (values.get("secrets") or {}).items():
                group, index = name.split("-")[1:]
                original = f"key-{group}-{index}" if key == "apiKey" else f"{env}-secret"
                keys[ref[2:-1]] = f"{env}-{original}" if env == "prod" and key == "apiKey" else original
    assert len(keys) == len(lines)
    for env in specs.ENVIRONMENTS:
        expected = helmfile_template(helmfile, helm3, project / "helmfile.yaml.gotmpl", env, environ)
        assert len(expected) > 100
        assert_same_objects(expected, deployer_template(project, helm3, env, {**environ, **keys}))


@pytest.mark.registry
def test_a_chart_repository_and_an_oci_registry_import_and_render_what_helmfile_renders(
    tmp_path: Path, helm3: Path, helmfile: Path, cache: Path
) -> None:
    """Charts from an HTTP chart repository and from an OCI registry (both real, on loopback): the
    imported spec names the same repositories and versions and renders what helmfile renders."""
    web = package(helm3, make_chart(tmp_path / "src", "hello", "1.0.0"), tmp_path / "repo")
    oci = package(helm3, make_chart(tmp_path / "src", "greeter", "2.0.0"), tmp_path / "pkg")
    environ = helm_env(tmp_path)
    with serve(web.parent) as repo, oci_registry(tmp_path / "registry.log") as registry:
        repo.reindex(helm3)
        registry.push(helm3, oci, environ)
        project = tmp_path / "gitops"
        project.mkdir()
        (project / "helmfile.yaml").write_text(
            textwrap.dedent(f"""\
            repositories:
              - name: charts
                url: {repo.url}
              - name: registry
                url: {registry.host}/charts
                oci: true
                plainHttp: true
            environments:
              dev: {{}}
            ---
            releases:
              - name: web
                namespace: shop
                chart: charts/hello
                version: 1.0.0
                values:
                  - greeting: from the repository
              - name: greeter
                namespace: shop
                chart: registry/greeter
                version: 2.0.0
            """)
        )
        imported = run(
            ["import", "helmfile", "helmfile.yaml", "--helmfile", str(helmfile), "--helm", str(helm3)],
            project,
            environ,
        )
        assert imported.code == 0, imported.err
        spec = yaml.safe_load((project / "deployer.yaml").read_text())
        assert {r["name"]: r["url"] for r in spec["repositories"]} == {
            "charts": repo.url,
            "registry": f"oci://{registry.host}/charts",
        }
        assert {(r["name"], r["chart"], r["version"]) for r in spec["releases"]} == {
            ("web", "charts/hello", "1.0.0"),
            ("greeter", "registry/greeter", "2.0.0"),
        }
        added = subprocess.run(  # template --skip-deps (as elsewhere here) adds no repository
            [str(helmfile), "--helm-binary", str(helm3), "-e", "dev", "repos"],
            capture_output=True,
            text=True,
            check=False,
            cwd=project,
            env=environ,
        )
        assert added.returncode == 0, added.stderr
        expected = helmfile_template(helmfile, helm3, project / "helmfile.yaml", "dev", environ)
        assert len(expected) == 2
        actual = deployer_template(project, helm3, "dev", environ)
        assert_same_objects(expected, actual)
        assert actual[("v1", "ConfigMap", "", "web")]["data"]["greeting"] == "from the repository"
