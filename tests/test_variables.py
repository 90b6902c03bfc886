"""Variables for values: declared per environment and in defaults, referenced with the `!var` tag in
any values file, overlay or inline values; traced by `values --explain`; sensitive ones masked;
every mistake a file:line error that changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testing.cli import run, tree_state

SPEC = """\
defaults:
  namespace: shop
  vars:
    domain: example.com
    replicas: 1
    tls: {enabled: true, issuer: letsencrypt}
environments:
  dev: {}
  prod:
    vars:
      domain: shop.example.com
      replicas: 3
      dbPassword: {value: "${DB_PASSWORD}", sensitive: true}
releases:
  - name: api
    chart: ./chart
    values:
      - values/api.yaml
      - {inline: !var "inline.${domain}"}
"""

VALUES = """\
ingress:
  host: !var "api.${domain}"
  tls: !var tls
replicaCount: !var replicas
command: ["sh", "-c", "echo ${HOME} {{ .Values.x }}"]
literal: !var "costs $${price}"
"""


def project(tmp_path: Path, spec: str = SPEC, values: str = VALUES, overlay: str | None = None) -> Path:
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: chart\nversion: 1.0.0\n")
    (tmp_path / "values").mkdir()
    (tmp_path / "values" / "api.yaml").write_text(values)
    (tmp_path / "deployer.yaml").write_text(spec)
    if overlay is not None:
        (tmp_path / "environments" / "prod").mkdir(parents=True)
        (tmp_path / "environments" / "prod" / "values.yaml").write_text(overlay)
    return tmp_path


def test_each_environment_gets_its_own_values_and_types_are_kept(tmp_path: Path) -> None:
    root = project(tmp_path)
    # DB_PASSWORD is unset: only prod's variables need it, and only when prod is used
    dev = run(["values", "-e", "dev", "api"], root, {"DB_PASSWORD": None})
    assert dev.code == 0, dev.err
    assert "host: api.example.com\n" in dev.out
    assert "replicaCount: 1\n" in dev.out
    assert "  tls:\n    enabled: true\n    issuer: letsencrypt\n" in dev.out
    assert "inline: inline.example.com\n" in dev.out
    prod = run(["values", "-e", "prod", "api"], root, {"DB_PASSWORD": "pw"})
    assert "host: api.shop.example.com\n" in prod.out
    assert "replicaCount: 3\n" in prod.out  # a number, not the text "3"


def test_text_a_chart_expects_is_never_touched_and_a_double_dollar_is_literal(tmp_path: Path) -> None:
    out = run(["values", "-e", "dev", "api"], project(tmp_path)).out
    assert "- echo ${HOME} {{ .Values.x }}\n" in out
    assert "literal: costs ${price}\n" in out


def test_explain_names_where_the_value_was_written_and_where_the_var_came_from(tmp_path: Path) -> None:
    out = run(["values", "-e", "prod", "api", "--explain"], project(tmp_path), {"DB_PASSWORD": "x"}).out
    assert (
        'ingress.host = "api.shop.example.com"    # values/api.yaml:2:9 (var domain from deployer.yaml:11:15)'
        in out
    ), out
    assert (
        'ingress.tls.issuer = "letsencrypt"    # values/api.yaml:3:8 (var tls from deployer.yaml:6:10)' in out
    )
    assert "replicaCount = 3    # values/api.yaml:4:15 (var replicas from deployer.yaml:12:17)" in out


def test_a_sensitive_var_is_masked_wherever_it_lands(tmp_path: Path) -> None:
    overlay = 'api:\n  db:\n    password: !var dbPassword\n    url: !var "postgres://app:${dbPassword}@db"\n'
    root = project(tmp_path, overlay=overlay)
    env = {"DB_PASSWORD": "s3cr3t-pw"}
    shown = run(["values", "-e", "prod", "api"], root, env)
    assert shown.code == 0, shown.err
    assert "s3cr3t-pw" not in shown.out
    assert "password: <sensitive>" in shown.out
    assert "url: <sensitive>" in shown.out
    explained = run(["values", "-e", "prod", "api", "--explain"], root, env)
    assert "s3cr3t-pw" not in explained.out
    assert (
        "db.password = <sensitive>    # environments/prod/values.yaml:3:15 (var dbPassword from"
        in explained.out
    )
    revealed = run(["values", "-e", "prod", "api", "--show-secrets"], root, env)
    assert "url: postgres://app:s3cr3t-pw@db" in revealed.out


@pytest.mark.parametrize(
    ("values", "where", "what"),
    [
        ("host: !var domian\n", "values/api.yaml:1:7", "unknown variable 'domian' in environment 'dev'"),
        ('host: !var "api.${nope}"\n', "values/api.yaml:1:7", "unknown variable 'nope'"),
        ("tls: !var tls.missing\n", "values/api.yaml:1:6", "variable 'tls' has no key 'missing'"),
        ('host: !var "a ${tls} b"\n', "values/api.yaml:1:7", "variable 'tls' holds a map"),
        ("host: !var {a: b}\n", "values/api.yaml:1:7", "!var takes a variable name or a text, not a map"),
        ('host: !var "two words"\n', "values/api.yaml:1:7", "invalid !var reference 'two words'"),
    ],
)
def test_a_bad_reference_is_a_file_line_error_that_changes_nothing(
    tmp_path: Path, values: str, where: str, what: str
) -> None:
    root = project(tmp_path, values=values)
    before = tree_state(root)
    for argv in (["validate"], ["values", "-e", "dev", "api"]):
        result = run(argv, root, {"DB_PASSWORD": "x"})
        assert result.code == 1, result.out
        assert where in result.err and what in result.err, result.err
        assert "Traceback" not in result.err
    assert tree_state(root) == before


def test_the_did_you_mean_hint_names_the_close_variable(tmp_path: Path) -> None:
    result = run(["validate"], project(tmp_path, values="host: !var domian\n"))
    assert "did you mean 'domain'?" in result.err


def test_a_var_cannot_reference_another(tmp_path: Path) -> None:
    spec = SPEC.replace("    replicas: 1\n", "    replicas: !var domain\n")
    result = run(["validate"], project(tmp_path, spec=spec))
    assert result.code == 1
    assert "deployer.yaml:5:15: variable 'replicas' references another variable" in result.err, result.err


def test_a_var_from_the_process_environment_must_be_set(tmp_path: Path) -> None:
    result = run(["values", "-e", "prod", "api"], project(tmp_path), {"DB_PASSWORD": None})
    assert result.code == 1
    assert "deployer.yaml:13:27: environment variable DB_PASSWORD is not set" in result.err, result.err


def test_vars_and_the_tag_are_in_the_editor_schema() -> None:
    schema = json.loads(run(["schema", "spec"], Path(__file__).parent).out)
    text = json.dumps(schema)
    assert '"vars"' in text
