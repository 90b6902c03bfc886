"""`deployer import helmfile` on what the corpus measurement found in real helmfiles (issue 19): a
chart, version or namespace read from the environment with a default the file holds in a template
variable, a value decoded with b64dec, and helmDefaults.templateArgs. Each test failed before its fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from testing.cli import run
from testing.helmfile import helm_env, project_with, written

pytestmark = pytest.mark.helm


def imported(project: Path, state: str, helmfile: Path, helm: Path):  # type: ignore[no-untyped-def]
    return run(
        ["import", "helmfile", state, "--helmfile", str(helmfile), "--helm", str(helm)],
        project,
        helm_env(project.parent),
    )


def no_marker(project: Path, *outputs: str) -> None:
    for name, text in [*written(project).items(), *(("output", o) for o in outputs)]:
        assert "zzdeployer" not in text.lower(), name


# Shaped like an environment file that keeps its defaults in template variables and a state file that
# reads the chart, version and namespace from its values.
_COMMON = """\
{{ $defaultNamespace := "orchestrate" }}
{{ $defaultChart := "acme/orchestrate" }}
{{ $defaultVersion := "3.0.0" }}
app:
  namespace: {{ env "APP_NAMESPACE" | default $defaultNamespace  }}
  chart:
    name: {{ env "APP_CHART" | default $defaultChart  }}
    version: {{ env "APP_CHART_VERSION" | default $defaultVersion }}
"""
_STATE = """\
environments:
  default:
    values:
      - environments/common.yaml.gotmpl
repositories:
  - name: acme
    url: https://charts.acme.example/
---
releases:
  - name: db
    namespace: {{ .Values.app.namespace }}
    chart: acme/db
    version: 1.0.0
  - name: app
    namespace: {{ .Values.app.namespace }}
    chart: {{ .Values.app.chart.name }}
    version: {{ .Values.app.chart.version }}
    needs:
      - {{ .Values.app.namespace }}/db
"""


def test_a_chart_and_version_read_from_a_variable_are_written_as_interpolations_with_their_default(
    tmp_path: Path, helm: Path, helmfile: Path
) -> None:
    project = project_with(
        tmp_path, {"helmfile.yaml.gotmpl": _STATE, "environments/common.yaml.gotmpl": _COMMON}
    )
    result = imported(project, "helmfile.yaml.gotmpl", helmfile, helm)
    assert result.code == 0, result.err
    spec = yaml.safe_load(written(project)["deployer.yaml"])
    app = next(r for r in spec["releases"] if r["name"] == "app")
    assert app["chart"] == "${APP_CHART:-acme/orchestrate}"
    assert app["version"] == "${APP_CHART_VERSION:-3.0.0}"
    assert app["namespace"] == "${APP_NAMESPACE:-orchestrate}"  # the default kept, not ${APP_NAMESPACE:-}
    assert app["needs"] == ["${APP_NAMESPACE:-orchestrate}/db"]
    assert "import: everything was carried over" in result.err
    assert "releases[app].chart: the chart is read from ${APP_CHART:-acme/orchestrate}" in result.err
    no_marker(project, result.err, result.out)
    assert run(["validate"], project).code == 0
    other = run(["validate"], project, {"APP_CHART": "elsewhere/orchestrate"})
    assert other.code == 1 and "repository 'elsewhere'" in other.err


def test_a_default_computed_by_the_template_is_frozen_with_a_loss_at_the_read(
    tmp_path: Path, helm: Path, helmfile: Path
) -> None:
    project = project_with(
        tmp_path,
        {
            "deploy/helmfile.yaml.gotmpl": """\
            environments:
              default:
                values:
                  - env.yaml.gotmpl
            ---
            releases:
              - name: web
                namespace: {{ .Values.namespace }}
                chart: {{ .Values.chart }}
            """,
            "deploy/env.yaml.gotmpl": """\
            base: web
            chart: {{ env "WEB_CHART" | default "../charts/echo" }}
            namespace: {{ env "WEB_NAMESPACE" | default (printf "%s-ns" "web") }}
            """,
        },
    )
    result = imported(project, "deploy/helmfile.yaml.gotmpl", helmfile, helm)
    assert result.code == 0, result.err
    web = yaml.safe_load(written(project)["deployer.yaml"])["releases"][0]
    assert web["namespace"] == "web-ns"
    assert web["chart"] == "./charts/echo"
    assert "env.yaml.gotmpl:3: env WEB_NAMESPACE: read with a default the import cannot write" in result.err
    assert '((printf "%s-ns" "web") is computed by the template)' in result.err
    assert "frozen at its default" in result.err
    lost = result.err.partition("note(s)")[0]
    assert "releases[web].chart: the chart is read from ${WEB_CHART:-../charts/echo}, a local chart" in lost
    assert "so it is frozen at that value" in lost
    no_marker(project, result.err, result.out)


def test_a_value_decoded_with_b64dec_leaves_the_environments_values_imported(
    tmp_path: Path, helm: Path, helmfile: Path
) -> None:
    project = project_with(
        tmp_path,
        {
            "helmfile.yaml.gotmpl": """\
            environments:
              default:
                values:
                  - env.yaml.gotmpl
            ---
            releases:
              - name: web
                namespace: {{ .Values.namespace }}
                chart: ./charts/echo
                values:
                  - web.yaml.gotmpl
            """,
            "env.yaml.gotmpl": """\
            namespace: {{ env "WEB_NAMESPACE" | default "web" }}
            b64Manifests: {{ requiredEnv "B64_MANIFESTS" }}
            """,
            "web.yaml.gotmpl": """\
            replicaCount: 2
            greeting: {{ "aGVsbG8=" | b64dec }}
            manifests: |-
              {{ if .Values.b64Manifests }}
              {{- toYaml .Values.b64Manifests | b64dec }}
              {{ end }}
            """,
        },
    )
    result = imported(project, "helmfile.yaml.gotmpl", helmfile, helm)
    assert result.code == 0, result.err
    assert "helmfile could not render them" not in result.err
    web = yaml.safe_load(written(project)["deployer.yaml"])["releases"][0]
    values = web["values"][0]
    assert values["replicaCount"] == 2
    assert values["greeting"] == "hello"  # a quoted text is still decoded
    assert values["manifests"].strip() == "${B64_MANIFESTS}"
    assert "web.yaml.gotmpl:5: b64dec: b64dec decodes a value while helmfile renders the file" in result.err
    no_marker(project, result.err, result.out)


def test_template_args_api_and_kube_versions_go_to_every_environment(tmp_path: Path) -> None:
    project = project_with(
        tmp_path,
        {
            "helmfile.yaml": """\
            environments:
              default: {}
              prod:
                kubeContext: prod
            ---
            apiVersions: [monitoring.coreos.com/v1]
            helmDefaults:
              templateArgs:
                - --api-versions=gateway.networking.k8s.io/v1
                - -a policy/v1,monitoring.coreos.com/v1
                - --kube-version v1.30.0
                - --skip-tests
            releases:
              - name: web
                namespace: apps
                chart: ./charts/echo
            """
        },
    )
    result = run(["import", "helmfile", "helmfile.yaml"], project, helm_env(tmp_path))
    assert result.code == 0, result.err
    spec = yaml.safe_load(written(project)["deployer.yaml"])
    for env in ("default", "prod"):
        assert spec["environments"][env]["apiVersions"] == [
            "monitoring.coreos.com/v1",
            "gateway.networking.k8s.io/v1",
            "policy/v1",
        ]
        assert spec["environments"][env]["kubeVersion"] == "v1.30.0"
    lost, _, notes = result.err.partition("note(s)")
    assert "helmDefaults.templateArgs: --skip-tests: extra argument(s)" in lost
    assert "--api-versions gateway.networking.k8s.io/v1" not in lost
    assert "carried into every environment's apiVersions and kubeVersion" in notes
    assert "diff and apply against a cluster render with the API versions" in notes
    assert run(["validate"], project).code == 0


def test_a_version_read_from_a_variable_stays_a_text_when_its_default_looks_like_a_number(
    tmp_path: Path, helm: Path, helmfile: Path
) -> None:
    common = _COMMON.replace('"3.0.0"', '"1.10"')
    project = project_with(
        tmp_path, {"helmfile.yaml.gotmpl": _STATE, "environments/common.yaml.gotmpl": common}
    )
    result = imported(project, "helmfile.yaml.gotmpl", helmfile, helm)
    assert result.code == 0, result.err
    checked = run(["validate"], project)
    # helmfile reads version: as a text: 1.10, a range deployer lock resolves, never the number 1.1
    assert "must be a string" not in checked.err
    assert "version '1.10', which deployer.lock.yaml does not lock" in checked.err


def test_a_base_a_nested_state_file_names_with_dotdot_is_read_from_the_neutralised_copy(
    tmp_path: Path, helm: Path, helmfile: Path
) -> None:
    proof = tmp_path / "hook-ran"
    project = project_with(
        tmp_path,
        {
            "helmfile.yaml.gotmpl": """\
            helmfiles:
              - apps/web/helmfile.yaml.gotmpl
            """,
            # nothing in it for the sandbox to rewrite: before the fix its directory was reached
            # through a link to the user's tree, and helmfile read ../../bases from there, hooks and
            # all (the hook ran)
            "apps/web/helmfile.yaml.gotmpl": """\
            bases:
              - ../../bases/default.yaml.gotmpl
            ---
            releases:
              - name: web
                namespace: apps
                chart: ../../charts/echo
            """,
            "bases/default.yaml.gotmpl": f"""\
            hooks:
              - events: [prepare, cleanup]
                showlogs: true
                command: /bin/sh
                args: [-c, "echo ran > {proof}"]
            """,
        },
    )
    result = imported(project, "helmfile.yaml.gotmpl", helmfile, helm)
    assert result.code == 0, result.err
    assert not proof.exists()
    no_marker(project, result.err, result.out)


def test_a_number_or_boolean_default_is_kept_where_text_goes_and_frozen_where_helmfile_wants_the_type(
    tmp_path: Path, helm: Path, helmfile: Path
) -> None:
    project = project_with(
        tmp_path,
        {
            "helmfile.yaml.gotmpl": """\
            environments:
              default:
                values:
                  - env.yaml.gotmpl
            ---
            helmDefaults:
              createNamespace: {{ env "CREATE_NAMESPACES" | default false }}
            releases:
              - name: web
                namespace: apps
                chart: ./charts/echo
                values:
                  - web.yaml.gotmpl
            """,
            "env.yaml.gotmpl": """\
            consumers: {{ env "MQ_NUM_CONSUMERS" | default 1 }}
            """,
            "web.yaml.gotmpl": """\
            environment:
              MQ_NUM_CONSUMERS: {{ .Values.consumers }}
            """,
        },
    )
    result = imported(project, "helmfile.yaml.gotmpl", helmfile, helm)
    assert result.code == 0, result.err
    spec = yaml.safe_load(written(project)["deployer.yaml"])
    assert spec["releases"][0]["values"] == [{"environment": {"MQ_NUM_CONSUMERS": "${MQ_NUM_CONSUMERS:-1}"}}]
    assert spec["defaults"]["createNamespace"] is False
    assert "env CREATE_NAMESPACES: read where helmfile wants a boolean, a number or a list" in result.err
    assert "env MQ_NUM_CONSUMERS" not in result.err
    no_marker(project, result.err, result.out)
    shown = run(["values", "-e", "default", "web"], project, {"MQ_NUM_CONSUMERS": "4"})
    assert shown.code == 0, shown.err
    assert yaml.safe_load(shown.out)["environment"]["MQ_NUM_CONSUMERS"] == 4
