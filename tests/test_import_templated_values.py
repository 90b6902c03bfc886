"""`deployer import helmfile` carries the values helmfile computes from templates (`.gotmpl` values
files reading `.Values`, `.Environment.Values`, `env` and `requiredEnv`), per environment: the written
spec gives, environment by environment, exactly the values helmfile renders (`helmfile write-values`,
the real one), with no secret in any written file and nothing run."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployer.importer.markers import markers_for
from deployer.importer.sandbox import split_env_defaults
from testing.cli import run
from testing.helmfile import (
    DATA,
    assert_same_objects,
    deployer_template,
    helm_env,
    helmfile_template,
    written,
)

pytestmark = pytest.mark.helm

ENVS = ["dev", "staging", "prod"]
EVENTS = ["prepare", "preapply", "presync", "postsync", "preuninstall", "postuninstall", "cleanup"]
SESSION_KEY = "Zx8Qp2Lm7Rt4Vb9Nc3Kd6Wf1"  # a literal in a values template
SMTP_PASSWORD = "hunter2-in-clear"  # a literal in prod's environment values


class _Loader(yaml.SafeLoader):
    """YAML with deployer's `!var NAME` kept as the text `!var NAME`."""


_Loader.add_constructor("!var", lambda loader, node: f"!var {loader.construct_scalar(node)}")  # type: ignore[arg-type]


def load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


CI = {"DB_PASSWORD": "s3cr3t-Db-Pa55word-from-ci", "DB_HOST": "db.real.internal", "STAGING_DOMAIN": "stg.io"}
ENCODED = base64.b64encode(CI["DB_PASSWORD"].encode()).decode()
# What the import makes sensitive variables of (the values that looked secret), set where deployer runs
CONCEALED = {
    "API_SESSIONKEY": SESSION_KEY,
    "API_MAIL_PASSWORD": SMTP_PASSWORD,
    "API_ENCODEDPASSWORD": ENCODED,
}


def echo_project(root: Path) -> tuple[Path, Path]:
    """A directory for the user's files, with the echo chart (it renders its values), and one for
    what hooks would write."""
    (root / "marks").mkdir()
    shutil.copytree(DATA / "charts" / "echo", root / "gitops" / "charts" / "echo")
    return root / "gitops", root / "marks"


def project(root: Path) -> tuple[Path, Path]:
    """Shaped like the templated helmfiles people have: environments each with a shared plain values
    file and their own `.gotmpl` one reading the process environment; a release whose values are a
    plain file, a template over `.Values`/`.Environment.Values` and an inline entry; hooks on every
    event."""
    out, marks = echo_project(root)
    files = {
        "helmfile.yaml.gotmpl": """\
            environments:
              dev:
                values: [environments/common.yaml, environments/dev.yaml.gotmpl]
              staging:
                values: [environments/common.yaml, environments/staging.yaml.gotmpl]
              prod:
                values: [environments/common.yaml, environments/prod.yaml.gotmpl]
            ---
            releases:
              - name: api
                namespace: {{ env "APP_NAMESPACE" | default "shop" }}
                chart: ./charts/echo
                hooks:
                  - events: [EVENTS]
                    command: /bin/sh
                    args: ["-c", "touch MARKS/api-{{`{{ .Event.Name }}`}}"]
                values:
                  - values/common.yaml
                  - values/api.yaml.gotmpl
                  - logLevel: {{ .Values.logLevel }}
              - name: worker
                namespace: shop
                chart: ./charts/echo
                values:
                  - values/worker.yaml.gotmpl
            """,
        "environments/common.yaml": "logLevel: info\nregion: eu-west-1\n",
        "environments/dev.yaml.gotmpl": """\
            replicas: 1
            domain: dev.example.com
            db:
              password: {{ requiredEnv "DB_PASSWORD" | quote }}
              host: {{ env "DB_HOST" | default "postgres.dev" }}
            """,
        "environments/staging.yaml.gotmpl": """\
            replicas: 2
            logLevel: debug
            domain: {{ env "STAGING_DOMAIN" | default "staging.example.com" }}
            db:
              password: {{ requiredEnv "DB_PASSWORD" | quote }}
              host: {{ env "DB_HOST" | default "postgres.staging" }}
            """,
        "environments/prod.yaml.gotmpl": f"""\
            replicas: 3
            domain: shop.example.com
            db:
              password: {{{{ requiredEnv "DB_PASSWORD" | quote }}}}
              host: {{{{ env "DB_HOST" | default "postgres.prod" }}}}
            smtpPassword: {SMTP_PASSWORD}
            """,
        "values/common.yaml": "image:\n  tag: '1.0'\ngreeting: hi\n",
        "values/api.yaml.gotmpl": f"""\
            replicas: {{{{ .Values.replicas }}}}
            ingress:
              enabled: true
              host: api.{{{{ .Values.domain }}}}
            environment: {{{{ .Environment.Name }}}}
            region: {{{{ .Environment.Values.region }}}}
            database:
              host: {{{{ .Values.db.host }}}}
              password: {{{{ .Values.db.password }}}}
              user: {{{{ env "DB_USER" | default "app" }}}}
            sessionKey: {SESSION_KEY}
            encodedPassword: {{{{ requiredEnv "DB_PASSWORD" | b64enc }}}}
            {{{{- if .Values | get "smtpPassword" "" }}}}
            mail:
              password: {{{{ .Values.smtpPassword }}}}
            {{{{- end }}}}
            """,
        "values/worker.yaml.gotmpl": "queue: jobs-{{ .Environment.Name }}\nconcurrency: 4\n",
    }
    for name, text in files.items():
        body = textwrap.dedent(text).replace("[EVENTS]", "[" + ", ".join(EVENTS) + "]")
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(body.replace("MARKS", str(marks)))
    return out, marks


def imported(
    tmp_path: Path, helm3: Path, helmfile: Path, worker: str | None = None
) -> tuple[Path, Path, Any, dict[str, str]]:
    gitops, marks = project(tmp_path)
    if worker is not None:
        (gitops / "values" / "worker.yaml.gotmpl").write_text(worker)
    environ = helm_env(tmp_path, CI)
    result = run(
        ["import", "helmfile", "helmfile.yaml.gotmpl", "--helmfile", str(helmfile), "--helm", str(helm3)],
        gitops,
        environ,
    )
    assert result.code == 0, result.err
    return gitops, marks, result, environ


def helmfile_values(
    helmfile: Path,
    helm3: Path,
    gitops: Path,
    env: str,
    environ: dict[str, str],
    *,
    state: str = "helmfile.yaml.gotmpl",
) -> Any:
    out = gitops.parent / "rendered" / env
    proc = subprocess.run(
        [str(helmfile), "--helm-binary", str(helm3), "-f", state, "-e", env, "--skip-deps",
         "write-values", "--output-file-template", str(out) + "/{{ .Release.Name }}.yaml"],
        capture_output=True, text=True, check=False, cwd=gitops, env=environ,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return {p.stem: yaml.safe_load(p.read_text()) for p in sorted(out.glob("*.yaml"))}


def test_the_written_spec_gives_helmfiles_rendered_values_in_every_environment(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    gitops, marks, _, environ = imported(tmp_path, helm3, helmfile)
    assert os.listdir(marks) == []  # the import ran none of the hooks
    for env in ENVS:
        expected = helmfile_values(helmfile, helm3, gitops, env, environ)
        for release in ("api", "worker"):
            shown = run(
                ["values", "-e", env, release, "--show-secrets"],
                gitops,
                {**environ, **CONCEALED, "DEPLOYER_HELM": str(helm3)},
            )
            assert shown.code == 0, shown.err
            assert yaml.safe_load(shown.out) == expected[release], (env, release)
    # The values that looked secret are sensitive variables: masked unless asked for.
    masked = run(
        ["values", "-e", "prod", "api"], gitops, {**environ, **CONCEALED, "DEPLOYER_HELM": str(helm3)}
    )
    assert masked.code == 0, masked.err
    shown_values = yaml.safe_load(masked.out)
    assert (shown_values["sessionKey"], shown_values["mail"]["password"]) == ("<sensitive>", "<sensitive>")
    # The fixture's hooks are real: helmfile itself ran one (its cleanup hook) above.
    assert os.listdir(marks) != []


def test_the_shared_part_goes_to_the_base_and_each_environment_keeps_only_its_differences(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    gitops, _, _, _ = imported(tmp_path, helm3, helmfile)
    files = written(gitops)
    spec = load(files["deployer.yaml"])
    assert spec["defaults"]["vars"] == {
        "API_ENCODEDPASSWORD": {"value": "${API_ENCODEDPASSWORD}", "sensitive": True},
        "API_MAIL_PASSWORD": {"value": "${API_MAIL_PASSWORD}", "sensitive": True},
        "API_SESSIONKEY": {"value": "${API_SESSIONKEY}", "sensitive": True},
    }
    api, worker = spec["releases"]
    assert api["namespace"] == "${APP_NAMESPACE:-shop}"
    assert api["values"] == [
        "values/common.yaml",
        {
            "ingress": {"enabled": True},
            "region": "eu-west-1",
            "database": {"password": "${DB_PASSWORD}", "user": "${DB_USER:-app}"},
            "sessionKey": "!var API_SESSIONKEY",
            "encodedPassword": "!var API_ENCODEDPASSWORD",
        },
    ]
    assert worker["values"] == [{"concurrency": 4}]
    overlays = {env: load(files[f"environments/{env}/values.yaml"]) for env in ENVS}
    assert overlays["staging"]["api"] == {
        "replicas": 2,
        "ingress": {"host": "api.${STAGING_DOMAIN:-staging.example.com}"},
        "environment": "staging",
        "database": {"host": "${DB_HOST:-postgres.staging}"},
        "logLevel": "debug",
    }
    assert overlays["prod"]["api"]["mail"] == {"password": "!var API_MAIL_PASSWORD"}
    assert overlays["dev"]["worker"] == {"queue": "jobs-dev"}


def test_no_secret_value_appears_in_any_written_file_and_each_gets_a_report_line(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    gitops, _, result, _ = imported(tmp_path, helm3, helmfile)
    files = written(gitops)
    for text in [*files.values(), result.out, result.err]:
        for secret in (*CI.values(), SESSION_KEY, SMTP_PASSWORD, ENCODED):
            assert secret not in text
    for where, what, var in [
        ("values/api.yaml.gotmpl:11", "sessionKey", "API_SESSIONKEY"),
        ("environments/prod.yaml.gotmpl:6", "mail.password", "API_MAIL_PASSWORD"),
    ]:
        line = f"{where}: releases[api].values: {what}: looks like a secret"
        assert line in result.err
        assert (
            f"written as !var {var}, a sensitive variable (defaults.vars) whose value is ${{{var}}}, "
            f"never its value; set {var} where deployer runs"
        ) in result.err
        assert f"| `{where}` | `releases[api].values: {what}` |" in files["IMPORT-REPORT.md"]
    assert (
        "values/api.yaml.gotmpl:12: releases[api].values: encodedPassword: is computed by the template "
        "from a variable of the environment (b64enc...), which deployer does not compute: written as "
        "!var API_ENCODEDPASSWORD"
    ) in result.err
    assert "values template" not in result.err  # no .gotmpl values file left behind


def test_values_helmfile_cannot_render_are_reported_with_the_file_and_line_and_not_written(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    broken = "queue: ok\nbroken: {{ .Values.nope.deeper }}\n"
    gitops, marks, result, _ = imported(tmp_path, helm3, helmfile, broken)
    line = "values/worker.yaml.gotmpl:2: values of environment 'dev': helmfile could not render them"
    assert line in result.err
    assert "values template values/worker.yaml.gotmpl is rendered by helmfile" in result.err
    api, worker = load((gitops / "deployer.yaml").read_text())["releases"]
    assert api["values"][1]["sessionKey"] == "!var API_SESSIONKEY"  # the other release is carried
    assert "values" not in worker
    assert os.listdir(marks) == []


def test_deployer_renders_what_helmfile_renders_in_every_environment_on_both_helm_majors(
    tmp_path: Path, helm3: Path, helm: Path, helmfile: Path, cache: Path
) -> None:
    gitops, _, _, environ = imported(tmp_path, helm3, helmfile)
    for env in ENVS:
        expected = helmfile_template(helmfile, helm3, gitops / "helmfile.yaml.gotmpl", env, environ)
        assert len(expected) >= 3, expected  # both releases' ConfigMaps (their values) and more
        assert_same_objects(expected, deployer_template(gitops, helm, env, {**environ, **CONCEALED}))


def test_a_plain_state_file_with_gotmpl_values_files_gets_them_rendered_by_helmfile_running_nothing(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    gitops, marks = echo_project(tmp_path)
    (gitops / "values").mkdir()
    (gitops / "helmfile.yaml").write_text(
        textwrap.dedent(f"""\
        environments:
          dev:
            values: [{{replicas: 1}}]
          prod:
            values: [{{replicas: 3}}]
        ---
        releases:
          - name: app
            chart: ./charts/echo
            hooks:
              - events: [{", ".join(EVENTS)}]
                command: touch
                args: ["{marks}/hook"]
            values:
              - values/base.yaml
              - values/app.yaml.gotmpl
        """)
    )
    (gitops / "values" / "base.yaml").write_text("image: {tag: '2.0'}\n")
    (gitops / "values" / "app.yaml.gotmpl").write_text(
        "replicas: {{ .Values.replicas }}\nenv: {{ .Environment.Name }}\n"
        'region: {{ env "REGION" | default "eu" }}\n'
    )
    environ = helm_env(tmp_path, {"REGION": "us-real"})
    command = ["import", "helmfile", "helmfile.yaml", "--helmfile", str(helmfile), "--helm", str(helm3)]
    result = run(command, gitops, environ)
    assert result.code == 0, result.err
    assert os.listdir(marks) == []
    assert "us-real" not in "".join(written(gitops).values())
    assert "values template" not in result.err
    spec = load((gitops / "deployer.yaml").read_text())
    assert spec["releases"][0]["values"] == ["values/base.yaml", {"region": "${REGION:-eu}"}]
    for env in ("dev", "prod"):
        expected = helmfile_values(helmfile, helm3, gitops, env, environ, state="helmfile.yaml")
        shown = run(["values", "-e", env, "app"], gitops, environ)
        assert shown.code == 0, shown.err
        assert yaml.safe_load(shown.out) == expected["app"]
    # Without helmfile, the plain file still imports; the .gotmpl file is listed as left out.
    for name in ("deployer.yaml", "IMPORT-REPORT.md", "environments"):
        shutil.rmtree(gitops / name) if (gitops / name).is_dir() else (gitops / name).unlink()
    result = run(["import", "helmfile", "helmfile.yaml"], gitops, {**environ, "PATH": "/nonexistent"})
    assert result.code == 0, result.err
    assert "values template values/app.yaml.gotmpl is rendered by helmfile" in result.err


def test_each_default_a_variable_is_read_with_gets_its_own_marker_and_reference() -> None:
    texts = [
        'a: {{ env "HOST" | default "db.dev" }}\nb: {{ requiredEnv "HOST" }}\n',
        'c: {{ default "db.prod" (env "HOST") }}\nd: {{ env "HOST" }}\ne: x\n',
    ]
    markers = markers_for(texts)
    environ = markers.environ()
    rendered = []
    for text in texts:
        copied = split_env_defaults(text)
        assert copied.splitlines()[-1] == text.splitlines()[-1]  # only the template actions change
        # What helmfile would render from the copy: each name it reads holds its marker.
        rendered.append(re.sub(r'\{\{[^}]*"(\w+)"[^}]*\}\}', lambda m: environ[m.group(1)], copied))
    assert [markers.restore(text) for text in rendered] == [
        "a: ${HOST:-db.dev}\nb: ${HOST}\n",
        "c: ${HOST:-db.prod}\nd: ${HOST}\ne: x\n",  # the same name as requiredEnv's: required
    ]


def test_a_secret_looking_value_in_a_nested_helmfile_becomes_a_variable_of_deployer_yaml(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    """A nested state file's concealed value: the variable is declared once, in deployer.yaml's
    defaults (an included file holds releases and repositories only), and the included file refers
    to it; the written spec validates, and the value is nowhere in clear."""
    gitops, _marks = echo_project(tmp_path)
    shutil.move(gitops / "charts", tmp_path / "charts")
    (gitops / "apps" / "values").mkdir(parents=True)
    shutil.move(tmp_path / "charts", gitops / "apps" / "charts")
    (gitops / "helmfile.yaml").write_text(
        "environments:\n  dev: {}\n---\nhelmfiles:\n  - apps/helmfile.yaml\n"
    )
    (gitops / "apps" / "helmfile.yaml").write_text(
        "environments:\n  dev: {}\n---\nreleases:\n  - name: api\n    chart: ./charts/echo\n"
        "    values: [values/api.yaml.gotmpl]\n"
    )
    (gitops / "apps" / "values" / "api.yaml.gotmpl").write_text(
        f"sessionKey: {SESSION_KEY}\nenv: {{{{ .Environment.Name }}}}\n"
    )
    environ = helm_env(tmp_path)
    command = ["import", "helmfile", "helmfile.yaml", "--helmfile", str(helmfile), "--helm", str(helm3)]
    result = run(command, gitops, environ)
    assert result.code == 0, result.err
    files = written(gitops)
    assert SESSION_KEY not in "".join(files.values()) + result.out + result.err
    spec = load(files["deployer.yaml"])
    assert spec["defaults"]["vars"]["API_SESSIONKEY"] == {"value": "${API_SESSIONKEY}", "sensitive": True}
    included = load(files["deployer.d/apps.yaml"])
    assert set(included) == {"releases"}
    assert included["releases"][0]["values"] == [{"env": "dev", "sessionKey": "!var API_SESSIONKEY"}]
    checked = run(["validate"], gitops, {**environ, "API_SESSIONKEY": SESSION_KEY})
    assert checked.code == 0, checked.err
    shown = run(["values", "-e", "dev", "api"], gitops, {**environ, "API_SESSIONKEY": SESSION_KEY})
    assert shown.code == 0, shown.err
    assert yaml.safe_load(shown.out) == {"sessionKey": "<sensitive>", "env": "dev"}
