"""`deployer import helmfile` on the shapes that went wrong on real helmfiles (issue 19): each test
failed before its fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deployer.importer.source import _helmfile_message, _message_mark
from testing.cli import run, tree_state
from testing.helmfile import copy_case, helm_env, project_with, written

pytestmark = pytest.mark.helm


def imported(project: Path, state: str, helmfile: Path, helm: Path, environ: dict[str, str], *extra: str):  # type: ignore[no-untyped-def]
    return run(
        ["import", "helmfile", *extra, state, "--helmfile", str(helmfile), "--helm", str(helm)],
        project,
        environ,
    )


def test_options_may_come_before_the_state_file(tmp_path: Path) -> None:
    project = copy_case("plain", tmp_path)
    result = run(["import", "helmfile", "-e", "prod", "helmfile.yaml"], project)
    assert result.code == 0, result.err
    assert "(1 environment(s))" in result.out
    assert list(yaml.safe_load((project / "deployer.yaml").read_text())["environments"]) == ["prod"]


def test_a_templated_file_named_by_a_relative_path_in_a_subdirectory_is_found(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    copy_case("templated", tmp_path)
    result = run(
        [
            "import",
            "helmfile",
            "templated/helmfile.yaml.gotmpl",
            "--helmfile",
            str(helmfile),
            "--helm",
            str(helm3),
        ],
        tmp_path,
        helm_env(tmp_path, {"IMPORT_NS": "shop"}),
    )
    assert result.code == 0, result.err
    assert "imported templated/helmfile.yaml.gotmpl (2 environment(s))" in result.out
    spec = yaml.safe_load((tmp_path / "deployer.yaml").read_text())
    assert {r["name"] for r in spec["releases"]} == {"web", "debug-tools", "backup"}
    assert next(r for r in spec["releases"] if r["name"] == "web")["chart"] == "./charts/echo"


def test_chart_sources_deployer_cannot_take_are_named_for_what_they_are(tmp_path: Path) -> None:
    project = project_with(
        tmp_path,
        {
            "helmfile.yaml": """\
            releases:
              - name: db
                namespace: data
                chart: acme/postgresql
                version: 16.4.0
              - name: tool
                namespace: data
                chart: https://github.com/example/tool/releases/download/v1.2.0/tool-1.2.0.tgz
              - name: app
                namespace: data
                chart: ./charts/echo
                needs: [data/db, tool]
            """
        },
    )
    # (no helm repository config that could name 'acme')
    result = run(["import", "helmfile"], project, {"HELM_REPOSITORY_CONFIG": str(tmp_path / "none.yaml")})
    assert result.code == 0, result.err
    assert (
        "helmfile.yaml:4: releases[db].chart: chart acme/postgresql names the repository 'acme', which "
        "is not declared under repositories:; release skipped: add - name: acme with its url under "
        "repositories: in deployer.yaml"
    ) in result.err
    assert "local chart" not in result.err
    assert (
        "helmfile.yaml:8: releases[tool].chart: chart URL https://github.com/example/tool/releases/download/"
        "v1.2.0/tool-1.2.0.tgz is a packaged chart (.tgz) fetched over HTTP; deployer installs charts from a "
        "repository: release skipped. Declare the repository that serves it (url: https://github.com/example/"
        "tool/releases/download/v1.2.0/) under repositories: and write chart: REPO/tool with version: 1.2.0"
    ) in result.err
    assert "go-getter" not in result.err
    # The skipped releases leave app's needs: with a line each; the spec passes validate.
    assert "helmfile.yaml:12: releases[app].needs: 'data/db' was skipped by the import" in result.err
    assert "helmfile.yaml:12: releases[app].needs: 'tool' was skipped by the import" in result.err
    spec = yaml.safe_load((project / "deployer.yaml").read_text())
    assert [r["name"] for r in spec["releases"]] == ["app"]
    assert "needs" not in spec["releases"][0]
    assert run(["validate"], project).code == 0


def test_a_klog_timestamp_in_helmfiles_output_is_never_a_location() -> None:
    stderr = (
        "I1203 07:24:47.123456   4242 loader.go:395] Config loaded from file\n"
        "W1203 07:24:47.200000   4242 warnings.go:70] something\n"
        "in ./helmfile.yaml.gotmpl: error during helmfile.yaml.gotmpl.part.0 parsing: template: "
        'stringTemplate:12:16: executing "stringTemplate" at <.Values.missing.key>: '
        'map has no entry for key "missing"\n'
    )
    message = _helmfile_message(stderr)
    assert "07:24:47" not in message
    assert _message_mark(message, "helmfile.yaml.gotmpl").line == 12
    no_line = "E1203 07:24:47.000001   4242 helmfile.go:1] something failed\n"
    mark = _message_mark(_helmfile_message(no_line), "helmfile.yaml.gotmpl")
    assert (mark.file, mark.line) == ("helmfile.yaml.gotmpl", 1)


def test_an_error_in_an_environment_values_file_names_that_file(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    project = project_with(
        tmp_path,
        {
            "environments/prod.yaml.gotmpl": """\
            replicas: 2
            region: {{ .Values.nowhere.region }}
            """,
            "helmfile.yaml.gotmpl": """\
            environments:
              prod:
                values:
                  - environments/prod.yaml.gotmpl
            ---
            releases:
              - name: web
                chart: ./charts/echo
            """,
        },
    )
    before = tree_state(project)
    result = imported(project, "helmfile.yaml.gotmpl", helmfile, helm3, helm_env(tmp_path))
    assert result.code == 1
    assert result.err.startswith("error: environments/prod.yaml.gotmpl:2:"), result.err
    assert tree_state(project) == before


def test_a_values_file_with_a_duplicate_key_is_imported_as_helm_reads_it(tmp_path: Path) -> None:
    project = project_with(
        tmp_path,
        {
            "values/web.yaml": """\
            replicas: 1
            image:
              tag: "1.0"
            replicas: 3
            """,
            "helmfile.yaml": """\
            releases:
              - name: web
                chart: ./charts/echo
                values:
                  - values/web.yaml
            """,
        },
    )
    result = run(["import", "helmfile"], project)
    assert result.code == 0, result.err
    assert (
        "helmfile.yaml:4: releases[web].values: values/web.yaml:4 repeats the key 'replicas' (helm keeps the "
        "last, deployer refuses the file): its values are written inline, as helm reads them"
    ) in result.err
    spec = yaml.safe_load((project / "deployer.yaml").read_text())
    assert spec["releases"][0]["values"] == [{"replicas": 3, "image": {"tag": "1.0"}}]
    assert run(["validate"], project).code == 0


def test_a_templated_file_with_nested_helmfiles_imports_its_own_releases(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    project = project_with(
        tmp_path,
        {
            "helmfile.yaml.gotmpl": """\
            environments:
              default: {}
            ---
            helmfiles:
              - path: apps/helmfile.yaml
            releases:
              - name: ingress
                namespace: {{ .Environment.Name }}-edge
                chart: ./charts/echo
            """,
            "apps/helmfile.yaml": """\
            releases:
              - name: shop
                namespace: apps
                chart: ../charts/echo
            """,
        },
    )
    result = imported(project, "helmfile.yaml.gotmpl", helmfile, helm3, helm_env(tmp_path))
    assert result.code == 0, result.err
    spec = yaml.safe_load((project / "deployer.yaml").read_text())
    assert [(r["name"], r["chart"], r["namespace"]) for r in spec["releases"]] == [
        ("ingress", "./charts/echo", "default-edge")
    ]
    # The nested file's releases are in a file of their own, their chart resolved from its directory.
    assert spec["include"] == ["deployer.d/apps.yaml"]
    apps = yaml.safe_load((project / "deployer.d" / "apps.yaml").read_text())
    assert [(r["name"], r["chart"], r["namespace"]) for r in apps["releases"]] == [
        ("shop", "./charts/echo", "apps")
    ]
    assert "Everything was carried over" in (project / "IMPORT-REPORT.md").read_text()
    assert run(["validate"], project).code == 0


def test_locked_versions_stay_in_their_environment_and_lockfilepath_is_not_reported(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    """Shaped like helmfile's own templated_lockfile case: a lock file for prod only."""
    project = project_with(
        tmp_path,
        {
            "helmfile.yaml.gotmpl": """\
            repositories:
              - name: myrepo
                url: http://127.0.0.1:9/
            environments:
              prod: {}
              staging: {}
            ---
            lockFilePath: lock-{{ .Environment.Name }}
            releases:
              - name: raw
                chart: myrepo/raw
                valuesTemplate:
                  - env: {{ .Environment.Name }}
            """,
            "lock-prod": """\
            version: 0.0.0-dev
            dependencies:
              - name: raw
                repository: http://127.0.0.1:9/
                version: 0.0.1
            digest: sha256:5401817b653c4eeb186cbfbb8d77dda6b72f84a548fc9cd128cbd478d5b2e705
            generated: "2022-10-12T20:17:15.98786845+03:00"
            """,
        },
    )
    result = imported(project, "helmfile.yaml.gotmpl", helmfile, helm3, helm_env(tmp_path))
    assert result.code == 0, result.err
    spec = yaml.safe_load((project / "deployer.yaml").read_text())
    raw = spec["releases"][0]
    assert "version" not in raw
    assert spec["environments"]["prod"]["releases"]["raw"] == {"version": "0.0.1"}
    assert "raw" not in (spec["environments"]["staging"] or {}).get("releases", {})
    assert "no chart version in environment(s) staging (helmfile installs the latest there)" in result.err
    assert "lockFilePath" not in result.err and "valuesTemplate" not in result.err
    for env in ("prod", "staging"):
        overlay = yaml.safe_load((project / "environments" / env / "values.yaml").read_text())
        assert overlay["raw"] == {"env": env}


def test_release_dependencies_are_reported_with_what_to_write_and_the_rest_imports(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    project = project_with(
        tmp_path,
        {
            "helmfile.yaml.gotmpl": """\
            releases:
              - name: web
                namespace: {{ .Environment.Name }}
                chart: ./charts/echo
                dependencies:
                  - chart: bitnami/redis
                    version: 19.0.0
                    alias: cache
              - name: api
                chart: ./charts/echo
            """
        },
    )
    result = imported(project, "helmfile.yaml.gotmpl", helmfile, helm3, helm_env(tmp_path))
    assert result.code == 0, result.err
    assert (
        "helmfile.yaml.gotmpl:5: releases[web].dependencies: chartify dependencies are not supported; not "
        "carried over: add them to the chart's Chart.yaml dependencies: (helm dependency build), or deploy "
        "each as its own release listed in needs:"
    ) in result.err
    assert {r["name"] for r in yaml.safe_load(written(project)["deployer.yaml"])["releases"]} == {
        "web",
        "api",
    }
