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


# Shaped like a repository whose top file picks releases out of shared nested files by label.
SELECTORS = {
    "apps/helmfile.yaml": """\
    releases:
      - name: api
        namespace: apps
        chart: ../charts/echo
        needs: [apps/worker]
      - name: worker
        namespace: apps
        chart: ../charts/echo
      - name: db
        namespace: data
        chart: ../charts/echo
        labels: {tier: db}
      - name: cache
        namespace: data
        chart: ../charts/echo
        labels: {tier: db}
    """,
    "tools/helmfile.yaml": """\
    commonLabels:
      team: platform
    helmfiles:
      - nested/helmfile.yaml
    releases:
      - name: lint
        namespace: tools
        chart: ../charts/echo
      - name: audit
        namespace: ops
        chart: ../charts/echo
    """,
    "tools/nested/helmfile.yaml": """\
    releases:
      - name: docs
        namespace: tools
        chart: ../../charts/echo
      - name: backup
        namespace: ops
        chart: ../../charts/echo
    """,
}
PARENT = """\
helmfiles:
  - path: apps/helmfile.yaml
    selectors:
      - name=api
      - tier=db,name!=cache
  - path: tools/helmfile.yaml
    selectors:
      - namespace=tools,team=platform
      - name=docs
releases:
  - name: web
    namespace: apps
    chart: ./charts/echo
"""


@pytest.mark.parametrize("parent", ["helmfile.yaml", "helmfile.yaml.gotmpl"])
def test_nested_helmfiles_selectors_import_only_the_releases_helmfile_selects(
    tmp_path: Path, helm3: Path, helmfile: Path, cache: Path, parent: str
) -> None:
    project = project_with(tmp_path, {parent: PARENT, **SELECTORS})
    environ = helm_env(tmp_path)
    result = run(
        ["import", "helmfile", parent, "--helmfile", str(helmfile), "--helm", str(helm3)], project, environ
    )
    assert result.code == 0, result.err
    assert "select with -l" not in result.err
    files = written(project)
    apps = yaml.safe_load(files["deployer.d/apps.yaml"])
    # name=api, or tier=db and not cache; api's need of worker (left out) goes, with a line
    assert [(r["name"], r.get("needs")) for r in apps["releases"]] == [("api", None), ("db", None)]
    tools = yaml.safe_load(files["deployer.d/tools.yaml"])
    assert [r["name"] for r in tools["releases"]] == ["lint"]  # commonLabels count
    # the nested file's own nested file inherits its parent's selectors (it has none of its own)
    nested = yaml.safe_load(files["deployer.d/tools-nested.yaml"])
    assert [r["name"] for r in nested["releases"]] == ["docs"]
    if parent == "helmfile.yaml":  # (a plain parent: the import filters, and says what it left out)
        assert (
            f"{parent}:2: helmfiles: apps/helmfile.yaml selectors: the selectors (name=api or "
            "tier=db,name!=cache) do not select cache, worker, so helmfile never deploys them from this "
            "entry: not imported"
        ) in result.err
        assert (
            "apps/helmfile.yaml:5: releases[api].needs: 'apps/worker' is left out by the selectors"
        ) in result.err
    checked = run(["validate"], project)
    assert checked.code == 0, checked.err
    expected = helmfile_template(helmfile, helm3, project / parent, "default", environ)
    assert {k[3] for k in expected} == {
        f"{n}{s}" for n in ("web", "api", "db", "lint", "docs") for s in ("", "-greeting")
    }
    assert_same_objects(expected, deployer_template(project, helm3, "default", environ))


def test_a_selector_the_import_cannot_apply_is_reported_and_every_release_kept(tmp_path: Path) -> None:
    nested = "releases:\n  - {name: one, chart: ../charts/echo}\n  - {name: two, chart: ../charts/echo}\n"
    project = project_with(
        tmp_path,
        {
            "helmfile.yaml": """\
            helmfiles:
              - path: a/helmfile.yaml
                selectors: [tier]
              - path: b/helmfile.yaml
                selectorsInherited: true
              - path: c/helmfile.yaml
                selectors: [dir=c]
            """,
            "a/helmfile.yaml": nested,
            "b/helmfile.yaml": nested.replace("one", "three").replace("two", "four"),
            "c/helmfile.yaml": nested.replace("one", "five").replace("two", "six"),
        },
    )
    result = run(["import", "helmfile"], project)
    assert result.code == 0, result.err
    assert (
        "helmfile.yaml:2: helmfiles: a/helmfile.yaml selectors: selector 'tier' is not key=value or "
        "key!=value terms joined by commas (helmfile refuses it): every release of the file is imported"
    ) in result.err
    assert (
        "helmfile.yaml:6: helmfiles: c/helmfile.yaml selectors: selector 'dir=c' selects by directory "
        "(dir=), which the import does not apply: every release of the file is imported"
    ) in result.err
    files = written(project)
    for name, releases in (("a", ["one", "two"]), ("b", ["three", "four"]), ("c", ["five", "six"])):
        assert [r["name"] for r in yaml.safe_load(files[f"deployer.d/{name}.yaml"])["releases"]] == releases
    assert "helmfiles: b/helmfile.yaml" not in result.err  # inherits the command line's: none
