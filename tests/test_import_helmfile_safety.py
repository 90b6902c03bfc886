"""`deployer import helmfile` runs nothing the files say to run (hooks, `exec`) and writes no secret
in clear, with the real helmfile resolving the templated files."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from testing.cli import run, tree_state
from testing.helmfile import DATA, helm_env, written

pytestmark = pytest.mark.helm

EVENTS = ["prepare", "preapply", "presync", "postsync", "preuninstall", "postuninstall", "cleanup"]


def hooks_project(root: Path, marks: Path) -> Path:
    """A templated helmfile shaped like the ones people have: a global prepare hook (`kubectl apply
    -k ...` in real ones), release hooks for every event (`/bin/sh -c`, a script, a command from
    PATH), one inside a template condition, a `bases:` file and a nested helmfile with their own."""
    project = root / "gitops"
    shutil.copytree(DATA / "charts" / "echo", project / "charts" / "echo")
    (project / "bases").mkdir()
    (project / "sub").mkdir()
    script = project / "hook.sh"
    script.write_text(f"#!/bin/sh\ntouch {marks}/script-$1\n")
    script.chmod(0o755)
    release_hooks = "".join(
        f"""
      - events: ["{event}"]
        showlogs: true
        command: /bin/sh
        args: ["-c", "touch {marks}/{event}"]
      - events: ["{event}"]
        command: ./hook.sh
        args: ["{event}"]
      - events: ["{event}"]
        command: touch
        args: ["{marks}/path-{event}"]"""
        for event in EVENTS
    )
    (project / "helmfile.yaml.gotmpl").write_text(
        textwrap.dedent("""\
        bases:
          - bases/common.yaml
        environments:
          dev: {{}}
          prod: {{}}
        ---
        helmfiles:
          - path: sub/helmfile.yaml
        releases:
          - name: web
            namespace: shop
            chart: ./charts/echo
            values:
              - greeting: hello-{{{{ .Environment.Name }}}}
                hooks: {{enabled: true}}
            hooks:{release_hooks}
        {{{{- if eq .Environment.Name "prod" }}}}
              - events: ["prepare"]
                command: /bin/sh
                args: ["-c", "touch {marks}/conditional"]
        {{{{- end }}}}
        """).format(marks=marks, release_hooks=release_hooks)
    )
    (project / "bases" / "common.yaml").write_text(
        "".join(
            f'{"hooks:" if event == "prepare" else ""}\n  - events: ["{event}"]\n    command: /bin/sh\n'
            f'    args: ["-c", "touch {marks}/global-{event}"]'
            for event in ("prepare", "cleanup")
        )
        + "\n"
    )
    (project / "sub" / "helmfile.yaml").write_text(
        textwrap.dedent(f"""\
        environments:
          dev: {{}}
          prod: {{}}
        ---
        releases:
          - name: nested
            namespace: shop
            chart: ../charts/echo
            hooks:
              - events: ["prepare", "presync"]
                command: /bin/sh
                args: ["-c", "touch {marks}/nested"]
          - {{name: flow, chart: ../charts/echo,
             hooks: [{{events: [prepare], command: /bin/sh, args: [-c, "touch {marks}/flow"]}}]}}
        """)
    )
    return project


def test_no_hook_runs_for_any_event_in_the_file_its_bases_or_its_nested_helmfiles(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    project = hooks_project(tmp_path, marks)
    environ = helm_env(tmp_path)
    # The fixture's hooks are real: helmfile itself runs them (prepare and cleanup) on a build.
    ran = subprocess.run(
        [str(helmfile), "--helm-binary", str(helm3), "-f", "helmfile.yaml.gotmpl", "-e", "prod", "build"],
        capture_output=True,
        text=True,
        check=False,
        cwd=project,
        env=environ,
    )
    assert ran.returncode == 0, ran.stderr
    assert {"prepare", "path-prepare", "script-prepare", "global-prepare", "global-cleanup", "nested", "flow",
            "conditional"} <= set(os.listdir(marks))  # fmt: skip
    shutil.rmtree(marks)
    marks.mkdir()

    result = run(
        ["import", "helmfile", "helmfile.yaml.gotmpl", "--helmfile", str(helmfile), "--helm", str(helm3)],
        project,
        environ,
    )
    assert result.code == 0, result.err
    assert os.listdir(marks) == []
    prod = yaml.safe_load((project / "environments" / "prod" / "values.yaml").read_text())
    assert prod["web"] == {"greeting": "hello-prod", "hooks": {"enabled": True}}  # a chart value is kept
    report = (project / "IMPORT-REPORT.md").read_text()
    for where, what, why in [
        ("helmfile.yaml.gotmpl:16", "releases[web].hooks", "these hooks use template actions of their own"),
        ("bases/common.yaml:1", "hooks", "hook 1: prepare: deployer never runs a command while it plans"),
        ("sub/helmfile.yaml:9", "releases[nested].hooks", "hook 1: prepare: deployer never runs a command"),
    ]:
        assert f"{where}: {what}: {why}" in result.err
        assert f"| `{where}` | `{what}` |" in report
    # Written down as deployer hooks (to run under apply only), never run.
    spec = yaml.safe_load((project / "deployer.yaml").read_text())
    assert [h["events"] for h in spec["defaults"]["hooks"]] == [["preapply"], ["cleanup"]]
    nested = yaml.safe_load((project / "deployer.d" / "sub.yaml").read_text())["releases"]
    assert nested[0]["hooks"][0]["command"] == ["/bin/sh", "-c", f"touch {marks}/nested"]
    assert run(["validate"], project).code == 0


def test_a_template_that_runs_a_command_is_refused_and_the_command_never_runs(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    project = tmp_path / "gitops"
    shutil.copytree(DATA / "charts" / "echo", project / "charts" / "echo")
    (project / "helmfile.yaml.gotmpl").write_text(
        "releases:\n"
        "  - name: web\n"
        "    chart: ./charts/echo\n"
        "    values:\n"
        f'      - commit: {{{{ exec "/bin/sh" (list "-c" "touch {marks}/exec; echo abc") | trim }}}}\n'
    )
    before = tree_state(project)
    result = run(
        ["import", "helmfile", "helmfile.yaml.gotmpl", "--helmfile", str(helmfile), "--helm", str(helm3)],
        project,
        helm_env(tmp_path),
    )
    assert result.code == 1
    assert result.err.startswith(
        "error: helmfile.yaml.gotmpl:5:1: helmfile.yaml.gotmpl runs a command while helmfile renders it "
        "(exec): an import never runs what the files say to run\n"
    )
    assert os.listdir(marks) == []
    assert tree_state(project) == before


def secrets_project(root: Path) -> Path:
    """Environment values in .gotmpl files that read the process environment (a DB password from CI),
    and a plain environment values file with a password and a token in clear."""
    project = root / "gitops"
    shutil.copytree(DATA / "charts" / "echo", project / "charts" / "echo")
    (project / "environments").mkdir()
    (project / "environments" / "common.yaml.gotmpl").write_text(
        textwrap.dedent("""\
        db:
          password: {{ requiredEnv "DB_PASSWORD" | quote }}
          host: {{ env "DB_HOST" | default "postgres.shop" }}
        apiToken: '{{ env "API_TOKEN" }}'
        """)
    )
    (project / "environments" / "prod.yaml").write_text(
        "smtp:\n  password: hunter2-in-clear\nsession: Zx8Qp2Lm7Rt4Vb9Nc3Kd6Wf1\n"
    )
    (project / "helmfile.yaml.gotmpl").write_text(
        textwrap.dedent("""\
        environments:
          dev:
            values:
              - environments/common.yaml.gotmpl
          prod:
            values:
              - environments/common.yaml.gotmpl
              - environments/prod.yaml
        ---
        releases:
          - name: api
            namespace: shop
            chart: ./charts/echo
            values:
              - database:
                  host: {{ .Values.db.host }}
                  password: {{ .Values.db.password }}
                token: {{ .Values.apiToken | quote }}
              {{- if .Values | get "smtp" nil }}
              - mail:
                  password: {{ .Values.smtp.password }}
                sessionKey: {{ .Values.session }}
              {{- end }}
        """)
    )
    return project


def test_variables_read_in_environment_values_files_become_references_never_their_values(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    project = secrets_project(tmp_path)
    password = "s3cr3t-Db-Pa55word-from-ci"
    environ = helm_env(
        tmp_path, {"DB_PASSWORD": password, "API_TOKEN": "tok-1234567890", "DB_HOST": "db.real"}
    )
    result = run(
        ["import", "helmfile", "helmfile.yaml.gotmpl", "--helmfile", str(helmfile), "--helm", str(helm3)],
        project,
        environ,
    )
    assert result.code == 0, result.err
    files = written(project)
    for text in [*files.values(), result.out, result.err]:
        for secret in (password, "tok-1234567890", "db.real", "hunter2-in-clear", "Zx8Qp2Lm7Rt4Vb9Nc3Kd6Wf1"):
            assert secret not in text
    spec = yaml.safe_load(files["deployer.yaml"])
    api = spec["releases"][0]
    assert api["values"][0] == {
        "database": {"host": "${DB_HOST:-postgres.shop}", "password": "${DB_PASSWORD}"},
        "token": "${API_TOKEN:-}",
    }
    prod = yaml.safe_load(files["environments/prod/values.yaml"])
    assert prod["api"] == {"mail": {"password": "${API_MAIL_PASSWORD}"}, "sessionKey": "${API_SESSIONKEY}"}
    assert (
        "releases[api].values: mail.password looks like a secret: written as ${API_MAIL_PASSWORD}"
        in result.err
    )
    assert "releases[api].values: sessionKey looks like a secret: written as ${API_SESSIONKEY}" in result.err
    # The references resolve from the environment deployer runs in.
    values = run(
        ["values", "-e", "prod", "api"],
        project,
        {**environ, "API_MAIL_PASSWORD": "m", "API_SESSIONKEY": "k", "DEPLOYER_HELM": str(helm3)},
    )
    assert values.code == 0, values.err
    assert yaml.safe_load(values.out)["database"]["password"] == password
