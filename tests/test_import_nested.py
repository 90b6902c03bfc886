"""`deployer import helmfile` on nested helmfiles (`helmfiles:`) shaped like the corpus measurement's
(docs/import-corpus.md, issue 19): each test failed before its fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from testing.cli import run, tree_state
from testing.helmfile import project_with as project_with_chart
from tests.test_import_resolve import imported, report

pytestmark = pytest.mark.helm


def included(project: Path, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((project / "deployer.d" / name).read_text())
    return doc


# A parent that hands its environment's values to each child (`values: [{{ toYaml .Values }}]`), and
# children whose templates read them: helmfile resolves a child only with its parent's values.
PARENT = """\
environments:
  default:
    values:
      - environments/default.yaml
  prod:
    values:
      - environments/prod.yaml
---
helmfiles:
  - path: apps/web/helmfile-child.yaml.gotmpl
    values: &appvalues
      - {{ toYaml .Values | nindent 8 }}
  - path: apps/api/helmfile-child.yaml.gotmpl
    values: *appvalues
"""


def parent_of(child: str, name: str) -> str:
    """A parent with one child, handed its environment's values (`NAME.namespace: NAME`)."""
    return f"""\
environments:
  default:
    values:
      - {name}: {{namespace: {name}}}
---
helmfiles:
  - path: {child}
    values:
      - {{{{ toYaml .Values | nindent 8 }}}}
"""


CHILD = """\
releases:
  - name: {name}
    chart: ../../charts/web
    namespace: {{{{ .Values.application.{name}.namespace }}}}
    values:
      - replicas: {{{{ .Values.application.{name}.replicas }}}}
"""


def test_templated_children_are_resolved_with_the_values_their_parent_hands_them(
    tmp_path: Path, helm3: Path, helm: Path, helmfile: Path
) -> None:
    project = project_with_chart(
        tmp_path,
        {
            "helmfile.yaml.gotmpl": PARENT,
            "environments/default.yaml": """\
            application:
              web: {namespace: web, replicas: 1}
              api: {namespace: api, replicas: 1}
            """,
            "environments/prod.yaml": """\
            application:
              web: {namespace: web, replicas: 3}
              api: {namespace: api, replicas: 2}
            """,
            "apps/web/helmfile-child.yaml.gotmpl": CHILD.format(name="web"),
            # api's values in a template of its own, as the corpus' children have them
            "apps/api/helmfile-child.yaml.gotmpl": CHILD.format(name="api").replace(
                "- replicas: {{ .Values.application.api.replicas }}", "- values.yaml.gotmpl"
            ),
            "apps/api/values.yaml.gotmpl": "replicas: {{ .Values.application.api.replicas }}\n",
        },
        chart="web",
    )
    before = tree_state(project)
    result = imported(project, "helmfile.yaml.gotmpl", helmfile, helm3)
    assert result.code == 0, result.err
    text = report(project)
    assert "not imported" not in text and "helmfiles[" not in text, text  # nothing lost, nothing to check
    spec = yaml.safe_load((project / "deployer.yaml").read_text())
    assert sorted(spec["include"]) == [f"deployer.d/apps-{n}-helmfile-child.yaml" for n in ("api", "web")]
    for name, dev, prod in (("web", 1, 3), ("api", 1, 2)):
        doc = included(project, f"apps-{name}-helmfile-child.yaml")
        [release] = doc["releases"]
        assert release["name"] == name and release["namespace"] == name, release
        assert release["chart"] == "./charts/web"  # ../../charts/web from apps/NAME/, from deployer.yaml
        for env, replicas in (("default", dev), ("prod", prod)):
            shown = run(["template", "-e", env, "-l", f"name={name}"], project, {"DEPLOYER_HELM": str(helm)})
            assert shown.code == 0, shown.err
            [config] = [d for d in yaml.safe_load_all(shown.out) if d and d["kind"] == "ConfigMap"]
            assert config["metadata"]["namespace"] == name, config
            assert yaml.safe_load(config["data"]["values.yaml"])["replicas"] == replicas, config
    after = tree_state(project)
    files = [k for k in before if k.endswith((".yaml", ".gotmpl"))]
    assert {k: after.get(k) for k in files} == {k: before[k] for k in files}  # the helmfiles untouched


def test_a_nested_file_that_does_not_exist_is_reported_as_missing(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    project = project_with_chart(
        tmp_path,
        {
            "helmfile.yaml": """\
            helmfiles:
              - path: releases/grafana.yaml
              - path: releases/weavescope.yaml
            """,
            "releases/weavescope.yaml": """\
            releases:
              - name: weavescope
                chart: ../charts/web
            """,
        },
        chart="web",
    )
    result = imported(project, "helmfile.yaml", helmfile, helm3)
    assert result.code == 0, result.err
    assert [r["name"] for r in included(project, "releases-weavescope.yaml")["releases"]] == ["weavescope"]
    [line] = [line for line in report(project).splitlines() if "grafana" in line]
    assert "helmfile.yaml:2" in line and "does not exist" in line, line
    assert "no helmfile state file" not in line and "import it on its own" not in line, line


def test_a_nested_file_with_one_environment_that_does_not_resolve_keeps_the_others(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    project = project_with_chart(
        tmp_path,
        {
            "helmfile-common.yaml": """\
            environments:
              default:
                values:
                  - environments/default.yaml
              load:
                values:
                  - environments/load.yaml
            """,
            "environments/default.yaml": "core: {namespace: core-dev}\n",
            "helmfile.yaml": """\
            bases:
              - helmfile-common.yaml
            ---
            helmfiles:
              - helmfile-core.yaml.gotmpl
            """,
            "helmfile-core.yaml.gotmpl": """\
            bases:
              - helmfile-common.yaml
            ---
            releases:
              - name: core
                namespace: {{ .Values.core.namespace }}
                chart: ./charts/web
            """,
        },
        chart="web",
    )
    result = imported(project, "helmfile.yaml", helmfile, helm3)
    assert result.code == 0, result.err
    [release] = included(project, "helmfile-core.yaml")["releases"]
    assert release["name"] == "core" and release["namespace"] == "core-dev", release
    text = report(project)
    assert "not imported: helmfile could not resolve helmfile-core" not in text, text
    lines = [line for line in text.splitlines() if "environment load" in line]
    assert len(lines) == 1 and "-e load" in lines[0] and "environments/load.yaml" in lines[0], text


def test_a_nested_template_named_yaml_under_a_templated_parent_is_resolved_and_the_rename_reported(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    project = project_with_chart(
        tmp_path,
        {
            "helmfile.yaml.gotmpl": parent_of("apps/helmfile-core.yaml", "core"),
            # helmfile v0 rendered every state file as a template; v1 only .gotmpl ones
            "apps/helmfile-core.yaml": """\
            releases:
              - name: core
                namespace: {{ .Values.core.namespace }}
                chart: ../charts/web
            """,
        },
        chart="web",
    )
    before = tree_state(project)
    result = imported(project, "helmfile.yaml.gotmpl", helmfile, helm3)
    assert result.code == 0, result.err
    [release] = included(project, "apps-helmfile-core.yaml")["releases"]
    assert release == {"name": "core", "chart": "./charts/web", "namespace": "core"}, release
    lines = [line for line in report(project).splitlines() if "a template named" in line]
    assert len(lines) == 1 and "apps/helmfile-core.yaml:1" in lines[0], report(project)
    assert "helmfile-core.yaml.gotmpl" in lines[0] and "helmfiles: entry" in lines[0], lines[0]
    after = tree_state(project)
    files = [k for k in before if k.endswith((".yaml", ".gotmpl"))]
    assert {k: after.get(k) for k in files} == {k: before[k] for k in files}  # renamed in the copy only
    assert not (project / "apps" / "helmfile-core.yaml.gotmpl").exists()


def test_the_hooks_of_a_child_resolved_by_its_parent_are_carried_and_not_run(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    project = project_with_chart(
        tmp_path,
        {
            "helmfile.yaml.gotmpl": parent_of("apps/helmfile-child.yaml.gotmpl", "web"),
            "apps/helmfile-child.yaml.gotmpl": f"""\
            releases:
              - name: web
                namespace: {{{{ .Values.web.namespace }}}}
                chart: ../charts/web
                hooks:
                  - events: ["presync"]
                    command: touch
                    args: ["{marks}/presync"]
            """,
        },
        chart="web",
    )
    result = imported(project, "helmfile.yaml.gotmpl", helmfile, helm3)
    assert result.code == 0, result.err
    [release] = included(project, "apps-helmfile-child.yaml")["releases"]
    assert release["namespace"] == "web"
    assert release["hooks"] == [{"events": ["presync"], "command": ["touch", f"{marks}/presync"]}], release
    assert list(marks.iterdir()) == []  # the import ran nothing


def test_children_named_by_a_glob_without_an_extension_are_all_imported(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    """`path: releases/*` (a corpus repository's layout: numbered children, `.gotmpl` or not) names
    every file there; the values listed under an item are not children. Before: no child was
    imported, and the report said everything was carried over."""
    child = "releases:\n  - name: {name}\n    namespace: apps\n    chart: ../charts/web\n"
    project = project_with_chart(
        tmp_path,
        {
            "helmfile.yaml.gotmpl": """\
            environments:
              default:
                values: [environments/default.yaml]
            ---
            helmfiles:
              - path: releases/*
                values:
                  - environments/default.yaml
                  - {{ toYaml .Values | nindent 8 }}
            """,
            "environments/default.yaml": "domain: example.com\n",
            "releases/001-crds.helmfile.yaml.gotmpl": child.format(name="crds"),
            "releases/002-apps.helmfile.yaml": child.format(name="apps"),
        },
        chart="web",
    )
    result = imported(project, "helmfile.yaml.gotmpl", helmfile, helm3)
    assert result.code == 0, result.err
    spec = yaml.safe_load((project / "deployer.yaml").read_text())
    assert spec["include"] == [
        "deployer.d/releases-001-crds.helmfile.yaml",
        "deployer.d/releases-002-apps.helmfile.yaml",
    ]
    names = [r["name"] for n in spec["include"] for r in included(project, n.split("/", 1)[1])["releases"]]
    assert names == ["crds", "apps"]
    assert "environments/default.yaml" not in "".join(spec["include"])


def test_a_child_without_the_environment_is_skipped_as_helmfile_skips_it(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    """Shaped like helmfile's own snapshot case environment_missing_in_subhelmfile: a child that
    defines only `prod`, imported for `test`, gives helmfile no release: nothing is lost, so the
    import says so in a note, not in a loss line (before: 'not imported ... import it on its own')."""
    project = project_with_chart(
        tmp_path,
        {
            "helmfile.yaml.gotmpl": """\
            environments:
              test:
                values: [{envName: test}]
            ---
            helmfiles:
              - path: helmfiles/test.yaml.gotmpl
                values:
                  - envName: {{ .Values.envName }}
              - path: helmfiles/prod.yaml.gotmpl
                values:
                  - envName: {{ .Values.envName }}
            """,
            "helmfiles/test.yaml.gotmpl": """\
            environments:
              test: {}
            ---
            releases:
              - name: app
                namespace: apps
                chart: ../charts/web
                values:
                  - env: {{ .Values.envName }}
            """,
            "helmfiles/prod.yaml.gotmpl": """\
            environments:
              prod: {}
            ---
            releases:
              - name: prod-only
                namespace: apps
                chart: ../charts/web
            """,
        },
        chart="web",
    )
    result = imported(project, "helmfile.yaml.gotmpl", helmfile, helm3)
    assert result.code == 0, result.err
    assert result.err.startswith("import: everything was carried over\nimport: 1 note(s)"), result.err
    assert "helmfiles/prod.yaml.gotmpl: helmfile finds no release in it for the environments imported" in (
        result.err
    )
    spec = yaml.safe_load((project / "deployer.yaml").read_text())
    assert spec["include"] == ["deployer.d/helmfiles-test.yaml"]
    [app] = included(project, "helmfiles-test.yaml")["releases"]
    assert app["name"] == "app" and {"env": "test"} in app["values"]


def test_a_child_outside_the_directory_named_by_a_glob_without_an_extension_runs_no_hook(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    """`path: ../shared/*` names a child outside the state file's directory: the sandbox must give
    helmfile a neutralised copy of it too, so its prepare hook never runs during the import."""
    marks = tmp_path / "marks"
    marks.mkdir()
    project = project_with_chart(
        tmp_path,
        {
            "helmfile.yaml.gotmpl": """\
            environments:
              default: {}
            ---
            helmfiles:
              - path: ../shared/*
            """,
            "../shared/apps": f"""\
            releases:
              - name: app
                namespace: apps
                chart: ../gitops/charts/web
                hooks:
                  - events: [prepare]
                    command: touch
                    args: [{marks}/hook-ran]
            """,
        },
        chart="web",
    )
    result = imported(project, "helmfile.yaml.gotmpl", helmfile, helm3)
    assert result.code == 0, result.err
    assert not list(marks.iterdir())  # nothing ran
    spec = yaml.safe_load((project / "deployer.yaml").read_text())
    [name] = spec["include"]
    [app] = included(project, name.split("/", 1)[1])["releases"]
    assert app["name"] == "app" and app["hooks"][0]["events"] == ["preapply"]
