"""`deployer import helmfile` on the templated states that failed to import in the corpus measurement
(docs/import-corpus.md, issue 19): each test failed before its fix."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
import yaml

from testing.cli import run, tree_state
from testing.helmfile import helm_env, written
from testing.helmfile import project_with as project_with_chart

pytestmark = pytest.mark.helm


def project_with(tmp_path: Path, files: dict[str, str]) -> Path:
    return project_with_chart(tmp_path, files, chart="web")


def imported(project: Path, state: str, helmfile: Path, helm: Path, *extra: str):  # type: ignore[no-untyped-def]
    return run(
        ["import", "helmfile", *extra, state, "--helmfile", str(helmfile), "--helm", str(helm)],
        project,
        helm_env(project.parent),
    )


def report(project: Path) -> str:
    return written(project).get("IMPORT-REPORT.md", "")


def test_an_oci_chart_of_a_templated_state_is_kept_as_written_and_never_pulled(
    tmp_path: Path, helm: Path, helmfile: Path
) -> None:
    registry = socket.socket()
    registry.bind(("127.0.0.1", 0))
    registry.listen(8)
    registry.settimeout(0.2)
    port = registry.getsockname()[1]
    connections: list[object] = []
    done = threading.Event()

    def accept() -> None:  # a registry's port: counts every connection, answers none
        while not done.is_set():
            try:
                conn, _ = registry.accept()
            except TimeoutError:
                continue
            connections.append(conn)
            conn.close()

    listener = threading.Thread(target=accept, daemon=True)
    listener.start()
    project = project_with(
        tmp_path,
        {
            "helmfile.yaml.gotmpl": f"""\
            releases:
              - name: app
                namespace: '{{{{ "apps" }}}}'
                chart: oci://ghcr.io/example/charts/app
                version: 1.2.3
              - name: local-registry
                namespace: apps
                chart: oci://127.0.0.1:{port}/charts/app
                version: 2.0.0
            """
        },
    )
    try:
        result = imported(project, "helmfile.yaml.gotmpl", helmfile, helm)
    finally:
        done.set()
        listener.join()
        registry.close()
    assert result.code == 0, result.err
    spec = yaml.safe_load((project / "deployer.yaml").read_text())
    assert [r["namespace"] for r in spec["releases"]] == ["apps", "apps"]
    text = yaml.safe_dump(spec)
    assert "oci://ghcr.io/example/charts" in text and "1.2.3" in text, text
    assert f"oci://127.0.0.1:{port}/charts" in text and "2.0.0" in text, text
    assert connections == []  # the import never asked the registry for anything


def test_a_templated_state_file_named_yaml_is_resolved_and_the_rename_is_reported(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    project = project_with(
        tmp_path,
        {
            "helmfile.yaml": """\
            environments:
              default:
                values:
                  - ns: web
            ---
            releases:
              - name: web
                namespace: {{ .Values.ns }}
                chart: ./charts/web
            """
        },
    )
    before = tree_state(project)
    result = imported(project, "helmfile.yaml", helmfile, helm3)
    assert result.code == 0, result.err
    spec = yaml.safe_load((project / "deployer.yaml").read_text())
    assert [r["namespace"] for r in spec["releases"]] == ["web"]
    text = report(project)
    assert "helmfile.yaml:1" in text and ".gotmpl" in text, text
    assert sum(".gotmpl" in line for line in text.splitlines()) == 1, text
    changed = {k for k, v in tree_state(project).items() if before.get(k) != v}
    assert changed <= {"deployer.yaml", "IMPORT-REPORT.md"}, changed


def test_an_environment_whose_values_file_is_missing_is_left_out_and_the_others_imported(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    project = project_with(
        tmp_path,
        {
            "environments/prod/global.yaml": "host: prod.example.com\n",
            "helmfile.yaml.gotmpl": """\
            environments:
              local:
                values:
                  - environments/local/global.yaml
              prod:
                values:
                  - environments/prod/global.yaml
            ---
            releases:
              - name: web
                chart: ./charts/web
                values:
                  - host: {{ .Values.host }}
            """,
        },
    )
    result = imported(project, "helmfile.yaml.gotmpl", helmfile, helm3)
    assert result.code == 0, result.err
    spec = yaml.safe_load((project / "deployer.yaml").read_text())
    assert "prod.example.com" in yaml.safe_dump(spec) + "".join(written(project).values())
    assert "local" not in (spec.get("environments") or {})
    lines = [line for line in report(project).splitlines() if "local" in line]
    assert len(lines) == 1, report(project)
    assert "helmfile.yaml.gotmpl:2" in lines[0] and "-e local" in lines[0], lines[0]
    assert "environments/local/global.yaml" in lines[0], lines[0]


def test_an_environment_that_does_not_resolve_still_fails_when_it_is_the_only_one(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    project = project_with(
        tmp_path,
        {
            "helmfile.yaml.gotmpl": """\
            environments:
              local:
                values:
                  - environments/local/global.yaml
            ---
            releases:
              - name: web
                chart: ./charts/web
            """,
        },
    )
    before = tree_state(project)
    result = imported(project, "helmfile.yaml.gotmpl", helmfile, helm3)
    assert result.code == 1
    assert "environments/local/global.yaml" in result.err
    assert "Traceback" not in result.err
    assert tree_state(project) == before


def test_a_variable_in_a_boolean_field_resolves_to_its_default_and_is_reported(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    project = project_with(
        tmp_path,
        {
            "helmfile.yaml.gotmpl": """\
            helmDefaults:
              createNamespace: {{ env "CREATE_NS" | default false }}
            ---
            releases:
              - name: web
                namespace: web
                chart: ./charts/web
            """,
        },
    )
    result = imported(project, "helmfile.yaml.gotmpl", helmfile, helm3)
    assert result.code == 0, result.err
    lines = [line for line in report(project).splitlines() if "CREATE_NS" in line]
    assert len(lines) == 1, report(project)
    assert "helmfile.yaml.gotmpl:2" in lines[0] and "false" in lines[0], lines[0]


def test_environment_names_made_by_a_template_are_taken_from_helmfile(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    project = project_with(
        tmp_path,
        {
            "environments/dev/values.yaml": "ns: dev-web\n",
            "environments/prod/values.yaml": "ns: prod-web\n",
            "helmfile.yaml.gotmpl": """\
            environments:
            {{- range $entry := readDirEntries "environments" }}
              {{ $entry.Name }}:
                values:
                  - environments/{{ $entry.Name }}/values.yaml
            {{- end }}
            ---
            releases:
              - name: web
                namespace: {{ .Values.ns }}
                chart: ./charts/web
            """,
        },
    )
    result = imported(project, "helmfile.yaml.gotmpl", helmfile, helm3)
    assert result.code == 0, result.err
    spec = yaml.safe_load((project / "deployer.yaml").read_text())
    assert sorted(spec["environments"]) == ["dev", "prod"]


def test_helmfile_v0s_layout_with_template_lines_keeps_its_environment_names(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    project = project_with(
        tmp_path,
        {
            "prod.yaml": "ns: prod-web\n",
            "helmfile.yaml": """\
            environments:
              default:
                values:
                  - default.yaml
              prod:
                values:
                  - prod.yaml

            releases:
            {{ if true }}
              - name: web
                namespace: {{ .Values.ns }}
                chart: ./charts/web
            {{ end }}
            """,
        },
    )
    result = imported(project, "helmfile.yaml", helmfile, helm3)
    assert result.code == 0, result.err
    spec = yaml.safe_load((project / "deployer.yaml").read_text())
    assert "prod-web" in "".join(written(project).values())
    assert list(spec.get("environments") or {}) == ["prod"]
    lines = [line for line in report(project).splitlines() if "environment default" in line]
    assert len(lines) == 1 and "-e default" in lines[0] and "default.yaml" in lines[0], report(project)
    assert "helmfile.yaml.gotmpl" not in lines[0]  # the user's file name, not the sandbox copy's


def test_paths_built_from_pwd_and_hook_definitions_kept_as_values_resolve(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    """Shaped like a corpus repository: environment values under `{{ requiredEnv "PWD" }}/etc/...`
    (PWD is where helmfile runs, not a setting: the sandbox gives helmfile its directory there), and
    a values file that keeps hook definitions as data (`hooks: {app: {...}}`) for the state file's
    template to place in a release. Before: the path held a marker and the values file's `hooks:` was
    emptied as if it were a state file's, so no environment resolved. The hook never runs."""
    marks = tmp_path / "marks"
    marks.mkdir()
    project = project_with_chart(
        tmp_path,
        {
            "helmfile.yaml.gotmpl": """\
            environments:
              dev:
                values:
                  - {{ requiredEnv "PWD" }}/etc/dev/globals.yaml
            ---
            releases:
              - name: app
                namespace: apps
                chart: ./charts/web
                values:
                  - replicas: {{ .Values.replicas }}
                {{- with .Values | get "hooks.app" "" }}
                hooks:
                  {{- range $name, $hook := . }}
                  - name: {{ $name }}
                    {{- toYaml $hook | nindent 4 }}
                  {{- end }}
                {{- end }}
            """,
            "etc/dev/globals.yaml": f"""\
            replicas: 2
            hooks:
              app:
                touch-it:
                  events: [prepare, presync]
                  command: touch
                  args: [{marks}/hook-ran]
            """,
        },
        chart="web",
    )
    result = imported(project, "helmfile.yaml.gotmpl", helmfile, helm3)
    assert result.code == 0, result.err
    assert "deployer-import-" not in result.err + report(project)  # no sandbox path shown
    spec = yaml.safe_load((project / "deployer.yaml").read_text())
    [app] = spec["releases"]
    assert app["values"] == [{"replicas": 2}]
    # Hooks a template builds from values are reported, not guessed; and never run.
    assert "helmfile.yaml.gotmpl:13: releases[app].hooks: these hooks use template actions" in result.err
    assert not list(marks.iterdir())
