"""The pure parts of what `import helmfile` does before helmfile reads a file: hooks emptied by
indentation (templated files included), `exec` renamed, and secret-looking values recognised."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from deployer.importer.conceal import Concealer, looks_secret
from deployer.importer.sandbox import EXEC_DISABLED, disable_exec, sandbox, strip, strip_flow

STATE = textwrap.dedent("""\
    hooks:
    - events: [prepare]
      command: kubectl
    releases:
      - name: api
        chart: ./c
        values:
          - hooks: {enabled: true}
        hooks:
        {{- if eq .Environment.Name "prod" }}
          - events: ["presync"]
            command: /bin/sh
            args: [-c, "kubectl wait --for=condition=ready pod -l app=db"]
        {{- end }}
        dependencies:
          - chart: bitnami/redis
            version: 19.0.0
      - name: worker
        chart: ./c
    templates:
      default: &default
        hooks: &hooks
          - events: [cleanup]
            command: rm
    ---
    releases:
    - name: z
      hooks:
      - events: [postsync]
      chart: y
    """)


def test_every_hooks_key_is_emptied_and_chart_values_named_hooks_are_kept() -> None:
    text, removed = strip(STATE)
    assert text == textwrap.dedent("""\
        hooks: []
        releases:
          - name: api
            chart: ./c
            values:
              - hooks: {enabled: true}
            hooks: []
            {{- if eq .Environment.Name "prod" }}
            {{- end }}
            dependencies: []
          - name: worker
            chart: ./c
        templates:
          default: &default
            hooks: &hooks []
        ---
        releases:
        - name: z
          hooks: []
          chart: y
        """)
    assert removed == [(1, "hooks", None), (9, "hooks", "api"), (15, "dependencies", "api"),
                       (22, "hooks", None), (28, "hooks", "z")]  # fmt: skip


def test_a_hooks_key_inside_a_flow_mapping_is_emptied_too() -> None:
    text = "releases:\n  - {name: a, chart: ./c, hooks: [{events: [prepare]}], values: [{hooks: 1}]}\n"
    assert strip_flow(strip(text)[0]) == (
        "releases:\n  - {name: a, chart: ./c, hooks: [], values: [{hooks: 1}]}\n",
        [(2, "hooks", "a")],
    )


def test_a_flow_collection_over_several_lines_is_read_as_one_value() -> None:
    text = "releases:\n  - name: a\n    hooks: [{events: [prepare],\n      command: sh}]\n    chart: x\n"
    assert strip(text) == ("releases:\n  - name: a\n    hooks: []\n    chart: x\n", [(3, "hooks", "a")])
    text = "releases:\n  - {name: a, chart: ./c,\n     hooks: [{events: [prepare]}]}\n  - name: b\n"
    assert strip(text) == (text, [])  # left to strip_flow, which parses it
    assert strip_flow(text)[0] == "releases:\n  - {name: a, chart: ./c,\n     hooks: []}\n  - name: b\n"


def test_exec_in_a_template_action_is_renamed_and_a_values_field_named_exec_is_not() -> None:
    text, lines = disable_exec(
        'a: {{ .Values.exec }}\nb: {{ exec "git" (list "rev-parse" "HEAD") | trim }}\n'
    )
    assert (
        text
        == f'a: {{{{ .Values.exec }}}}\nb: {{{{ {EXEC_DISABLED} "git" (list "rev-parse" "HEAD") | trim }}}}\n'
    )
    assert lines == [2]


@pytest.mark.parametrize(
    ("key", "value", "secret"),
    [
        ("password", "hunter2", True),
        ("adminPassword", "x", True),
        ("apiKey", "abc", True),
        ("token", "t", True),
        ("existingSecret", "my-secret", False),
        ("secretName", "db-credentials", False),
        ("passwordFile", "/run/secrets/pw", False),
        ("password", "", False),
        ("password", "${DB_PASSWORD}", False),
        ("session", "Zx8Qp2Lm7Rt4Vb9Nc3Kd6Wf1", True),  # a generated token under any key
        ("digest", "sha256:5401817b653c4eeb186cbfbb8d77dda6b72f84a548fc9cd128cbd478d5b2e705", False),
        ("host", "postgres-primary.data.svc.cluster.local", False),
        ("enabled", True, False),
        # A camelCase ...Secret key holding an object name names a Secret (seen in real charts' values).
        ("credentialSecret", "backup-longhorn-auth", False),
        ("extraEnvVarsSecret", "keycloak-env", False),
        ("jwtSecret", "Zx8Qp2Lm7Rt4Vb9Nc3Kd6Wf1", True),
        ("rpcSecret", "rpcSecret", True),
        ("passwordSecretKey", "password", False),
        ("s3SecretKey", "dev-secret", True),
        ("nginx.ingress.kubernetes.io/cors-allow-credentials", "true", False),
        ("secretKey", "key.json", False),
        ("secretKey", "minio-Secret-123", True),
        ("client_secret", "my-client-secret", True),
        # A routing rule is not a token, however varied its characters.
        ("match", "Host(`automation-n8n.example.com`)", False),
    ],
)
def test_what_looks_secret(key: str, value: object, secret: bool) -> None:
    assert looks_secret(key, value) is secret


def test_concealed_values_become_unique_references() -> None:
    concealer = Concealer()
    data, found = concealer.conceal(
        {"db": {"password": "a"}, "cache": {"password": "b"}, "db_password": "c"}, "api"
    )
    assert found == [("db.password", "API_DB_PASSWORD"), ("cache.password", "API_CACHE_PASSWORD"),
                     ("db_password", "API_DB_PASSWORD_2")]  # fmt: skip
    assert concealer.restore(str(data)) == (
        "{'db': {'password': '${API_DB_PASSWORD}'}, 'cache': {'password': '${API_CACHE_PASSWORD}'}, "
        "'db_password': '${API_DB_PASSWORD_2}'}"
    )


def test_helmfile_gets_a_path_with_only_helmfile_and_helm_and_none_of_the_callers_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-the-caller")
    state = tmp_path / "helmfile.yaml.gotmpl"
    state.write_text("releases: []\n")
    for name in ("helmfile", "helm"):
        (tmp_path / name).write_text("#!/bin/sh\n")
    with sandbox(state) as box:
        environ = box.environ(
            str(tmp_path / "helmfile"), str(tmp_path / "helm"), {"DB_PASSWORD": "zzmarkerzz"}
        )
        assert sorted(os.listdir(environ["PATH"])) == ["helm", "helmfile"]
        assert not Path(environ["KUBECONFIG"]).exists()
        assert sorted(os.listdir(environ["HOME"])) == ["cache", "config", "data", "plugins", "tmp"]
        assert sorted(environ) == [
            "DB_PASSWORD", "DEPLOYER_IMPORT_SOPS_LOG", "HELMFILE_TEMPDIR", "HELM_CACHE_HOME",
            "HELM_CONFIG_HOME", "HELM_DATA_HOME", "HELM_PLUGINS", "HOME", "KUBECONFIG", "PATH", "TMPDIR",
        ]  # fmt: skip
        # The only plugin: helm-secrets, answered by the sandbox's helm without decrypting anything.
        assert os.listdir(environ["HELM_PLUGINS"]) == ["helm-secrets"]
        assert box.view(state).read_text() == "releases: []\n"
        assert box.view(state).parent.is_dir() and not box.view(state).parent.is_symlink()
    assert not box.root.exists()
