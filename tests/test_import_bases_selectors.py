"""`deployer import helmfile` and what a parent state file hands its files: a base that is a template
and holds no releases (only `templates:`), rendered by helmfile with the file that names it; and a
nested helmfile's `selectors:`, applied at import as helmfile applies them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from testing.cli import run
from testing.helmfile import (
    assert_same_objects,
    deployer_template,
    helm_env,
    helmfile_template,
    project_with,
    written,
)

pytestmark = pytest.mark.helm

# Shaped like a repository that keeps its environments and release templates in bases of their own,
# which every nested helmfile reads again (`readFile` of a shared bases file).
TEMPLATES_BASE = {
    "helmfile.yaml": """\
    ---
    bases:
      - environments.yaml
      - templates.yaml

    helmfiles:
      - releases/**/helmfile.yaml.gotmpl

    releases:
      - name: web
        namespace: apps
        chart: ./charts/echo
        inherit:
          - template: default
    """,
    "environments.yaml": """\
    ---
    environments:
      dev:
        kubeContext: dev-cluster
      prod:
        kubeContext: prod-cluster
    """,
    "templates.yaml": """\
    ---
    templates:
      default:
        atomic: true
        missingFileHandler: Debug
        values:
          - config/{{ .Environment.Name }}.values.yaml
    """,
    "bases.yaml": """\
    ---
    bases:
      - ../../environments.yaml
      - ../../templates.yaml
    """,
    "config/dev.values.yaml": "greeting: web-dev\n",
    "config/prod.values.yaml": "greeting: web-prod\n",
    "releases/runners/helmfile.yaml.gotmpl": """\
    ---
    {{ readFile "../../bases.yaml" }}
    ---
    releases:
      - name: runners
        namespace: runners
        chart: ../../charts/echo
        inherit:
          - template: default
    """,
    "releases/runners/config/dev.values.yaml": "greeting: runners-dev\n",
    "releases/runners/config/prod.values.yaml": "greeting: runners-prod\n",
}


def test_a_base_of_templates_only_is_rendered_with_the_file_that_names_it(
    tmp_path: Path, helm3: Path, helmfile: Path, cache: Path
) -> None:
    project = project_with(tmp_path, TEMPLATES_BASE)
    environ = helm_env(tmp_path)
    result = run(["import", "helmfile", "--helmfile", str(helmfile), "--helm", str(helm3)], project, environ)
    assert result.code == 0, result.err
    assert "bases[1]" not in result.err and "not read" not in result.err
    assert "import: everything was carried over" in result.err
    files = written(project)
    spec = yaml.safe_load(files["deployer.yaml"])
    assert spec["environments"] == {
        "dev": {"kubeContext": "dev-cluster"},
        "prod": {"kubeContext": "prod-cluster"},
    }
    [web] = spec["releases"]
    assert web["atomic"] is True  # the base's template, applied to the parent's release
    runners = yaml.safe_load(files["deployer.d/releases-runners.yaml"])
    assert [r["name"] for r in runners["releases"]] == ["runners"]
    checked = run(["validate"], project)
    assert checked.code == 0, checked.err
    for env in ("dev", "prod"):
        expected = helmfile_template(helmfile, helm3, project / "helmfile.yaml", env, environ)
        assert len(expected) == 4  # each release's ConfigMap and Secret
        assert_same_objects(expected, deployer_template(project, helm3, env, environ))
