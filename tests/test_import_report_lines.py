"""`deployer import helmfile`'s report lists losses only (issue 19): a setting whose effect is the same
under deployer gets no line, and a repository the spec cannot take is left out with its releases, so
the written spec validates. Shapes seen in the corpus of docs/import-corpus.md; each test failed
before its change."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from testing.cli import run
from testing.helmfile import helm_env, project_with


def spec_of(project: Path) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((project / "deployer.yaml").read_text())  # type: ignore[no-any-return]


def test_environment_values_nothing_reads_are_no_loss(tmp_path: Path) -> None:
    """A plain file's environment values are read only by templates; with none, helmfile does not use
    them either (two public platform repositories had three environments each like this)."""
    project = project_with(
        tmp_path,
        {
            "envs/qa.yaml": "replicas: 1\n",
            "envs/staging.yaml": "replicas: 2\n",
            "helmfile.yaml": """\
            values:
              - team: web
            environments:
              qa:
                values: [envs/qa.yaml]
              staging:
                values: [envs/staging.yaml]
            ---
            releases:
              - name: web
                chart: ./charts/echo
            """,
        },
    )
    result = run(["import", "helmfile"], project)
    assert result.code == 0, result.err
    assert "import: everything was carried over" in result.err
    assert "only read by templates" not in (project / "IMPORT-REPORT.md").read_text()
    assert run(["validate"], project).code == 0


def test_environment_values_a_values_template_reads_are_reported_with_what_reads_them(tmp_path: Path) -> None:
    project = project_with(
        tmp_path,
        {
            "envs/qa.yaml": "replicas: 1\n",
            "values/web.yaml.gotmpl": "replicas: {{ .Values.replicas }}\n",
            "helmfile.yaml": """\
            environments:
              qa:
                values: [envs/qa.yaml]
            ---
            releases:
              - name: web
                chart: ./charts/echo
                values: [values/web.yaml.gotmpl]
            """,
        },
    )
    result = run(["import", "helmfile"], project)
    assert result.code == 0, result.err
    assert (
        "helmfile.yaml:3: environments.qa.values: environment values are only read by templates: here by "
        "releases[web] values/web.yaml.gotmpl, which the import does not carry over (see its line); write "
        "the values they produce into the release's values: in deployer.yaml"
    ) in result.err


def test_missing_file_handler_is_reported_only_when_a_file_it_governs_is_missing(tmp_path: Path) -> None:
    files = {
        "values/web.yaml": "replicas: 2\n",
        "helmfile.yaml": """\
        missingFileHandler: Warn
        releases:
          - name: web
            chart: ./charts/echo
            missingFileHandler: Info
            values: [values/web.yaml]
        """,
    }
    project = project_with(tmp_path / "present", files)
    result = run(["import", "helmfile"], project)
    assert result.code == 0, result.err
    assert "import: everything was carried over" in result.err

    files["helmfile.yaml"] = files["helmfile.yaml"].replace(
        "[values/web.yaml]", "[values/web.yaml, values/local.yaml]"
    )
    project = project_with(tmp_path / "missing", files)
    result = run(["import", "helmfile"], project)
    assert result.code == 0, result.err
    same = (
        "no deployer equivalent, and it governs files that are missing (values/local.yaml): deployer refuses "
        "a missing values file, so the import left them out (see their lines); create them and list them "
        "under the release's values:, or leave them out"
    )
    # One wording at both levels (it was "unknown to the importer" at the top, "no deployer equivalent"
    # on a release), and the missing file's own line says what to write.
    assert f"helmfile.yaml:1: missingFileHandler: {same}" in result.err
    assert f"helmfile.yaml:5: releases[web].missingFileHandler: {same}" in result.err
    assert "unknown to the importer" not in result.err
    assert (
        "releases[web].values: values/local.yaml: file not found; not carried over: create it, then list "
        "it under the release's values: in deployer.yaml"
    ) in result.err
    assert len(spec_of(project)["releases"][0]["values"]) == 1  # values/web.yaml, carried


def test_a_helm_git_repository_is_left_out_with_its_releases_and_the_spec_validates(tmp_path: Path) -> None:
    """The helm-git plugin's `git+https://` form (a public chart repository's own helmfile): the spec
    written before failed validate ("has URL 'git+https://...'") while the import said nothing was lost."""
    project = project_with(
        tmp_path,
        {
            "helmfile.yaml": """\
            repositories:
              - name: eck-crd
                url: git+https://github.com/example/eck-helm-chart@eck-crd
              - name: stable
                url: https://charts.example.com/stable
            releases:
              - name: eck
                chart: eck-crd/eck-crd
                namespace: default
              - name: web
                chart: ./charts/echo
                needs: [default/eck]
            """,
        },
    )
    result = run(["import", "helmfile"], project)
    assert result.code == 0, result.err
    assert "everything was carried over" not in result.err
    assert (
        "helmfile.yaml:3: repositories[eck-crd]: url git+https://github.com/example/eck-helm-chart@eck-crd "
        "is a git source of the helm-git plugin, which deployer does not read; not carried over: vendor the "
        "chart into this repository (write chart: ./path/to/chart)"
    ) in result.err
    assert (
        "helmfile.yaml:8: releases[eck].chart: chart eck-crd/eck-crd comes from repository 'eck-crd', which "
        "the import left out (see its line); release skipped: vendor the chart into this repository"
    ) in result.err
    assert "helmfile.yaml:12: releases[web].needs: 'default/eck' was skipped by the import" in result.err
    spec = spec_of(project)
    assert spec["repositories"] == [{"name": "stable", "url": "https://charts.example.com/stable"}]
    assert [r["name"] for r in spec["releases"]] == ["web"]
    checked = run(["validate"], project)
    assert checked.code == 0, checked.err


def test_a_release_written_under_repositories_is_not_written_as_a_repository(tmp_path: Path) -> None:
    """A home lab's helmfile: the release's entry indented under repositories:, same name as the
    repository; the spec written before had `url: ''` and failed validate."""
    project = project_with(
        tmp_path,
        {
            "helmfile.yaml": """\
            repositories:
            - name: plex
              url: https://charts.example.com/plex

            - name: plex
              namespace: plex
              chart: plex/plex-media-server
              values:
                - ingress:
                    enabled: true
            """,
        },
    )
    result = run(["import", "helmfile"], project)
    assert result.code == 0, result.err
    assert (
        "helmfile.yaml:5: repositories[plex]: has no url: it reads like a release (chart:, values:) written "
        "under repositories:, which helmfile v1 refuses (a repository has no chart:, namespace: or values:); "
        "not carried over: move it under releases:"
    ) in result.err
    assert "no deployer equivalent" not in result.err  # one line for the entry, not one per key
    assert spec_of(project)["repositories"] == [{"name": "plex", "url": "https://charts.example.com/plex"}]
    checked = run(["validate"], project)
    assert checked.code == 0, checked.err


def test_settings_deployer_cannot_say_name_what_to_write_instead(tmp_path: Path) -> None:
    project = project_with(
        tmp_path,
        {
            "helmfile.yaml": """\
            helmDefaults:
              syncArgs: [--force-conflicts]
              diffArgs: [--context=3]
              templateArgs: [--api-versions=gateway.networking.k8s.io/v1]
            releases:
              - name: web
                chart: ./charts/echo
                apiVersions: [monitoring.coreos.com/v1]
              - name: api
                chart: ./charts/api
            """,
        },
    )
    result = run(["import", "helmfile"], project)
    assert result.code == 0, result.err
    assert (
        "helmDefaults.syncArgs: extra arguments helmfile passes to helm upgrade; deployer passes no"
        in result.err
    )
    assert "helmDefaults.diffArgs: arguments of helmfile's diff (the helm-diff plugin)" in result.err
    assert (  # a note now: tests/test_import_chartvars.py
        "helmDefaults.templateArgs: --api-versions gateway.networking.k8s.io/v1 carried into every "
        "environment's apiVersions"
    ) in result.err.partition("note(s)")[2]
    assert (
        "releases[web].apiVersions: deployer's apiVersions are per environment; not carried over: write them "
        "under environments.<env>.apiVersions"
    ) in result.err
    assert (
        "releases[api].chart: local chart ./charts/api not found (no Chart.yaml there); release skipped: "
        "commit the chart at ./charts/api, or write the chart's repository and name"
    ) in result.err
    assert "no deployer equivalent" not in result.err


@pytest.mark.helm
def test_a_namespace_that_differs_per_environment_says_what_to_do(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    project = project_with(
        tmp_path,
        {
            "helmfile.yaml.gotmpl": """\
            environments:
              dev: {}
              prod: {}
            ---
            releases:
              - name: web
                namespace: web-{{ .Environment.Name }}
                chart: ./charts/echo
            """,
        },
    )
    result = run(
        ["import", "helmfile", "helmfile.yaml.gotmpl", "--helmfile", str(helmfile), "--helm", str(helm3)],
        project,
        helm_env(tmp_path),
    )
    assert result.code == 0, result.err
    assert (
        "releases[web].namespace: differs between environments (dev: web-dev, prod: web-prod); deployer has "
        "one namespace per release (an environment overrides only version, chart, installed and values): "
        "imported with dev's; if the others must keep theirs, import each environment on its own "
        "(deployer import helmfile -e ENV) into its own directory"
    ) in result.err
