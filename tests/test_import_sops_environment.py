"""Environment `secrets:` (sops-encrypted files) in a templated helmfile: the import resolves the
helmfile without decrypting anything (no key, no helm-secrets plugin needed), every value the
templates read from such a file is written as a variable, never its value, and the report names the
file and the variables; with the variables set, `deployer template` renders them where helmfile would.
Shaped like the corpus's helmfiles that keep each environment's credentials in a `secrets.yaml`
encrypted with sops (sops leaves the keys in clear and encrypts each value)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from testing.cli import run
from testing.helmfile import helm_env, objects, project_with, written

pytestmark = pytest.mark.helm


def enc(data: str) -> str:
    """A value as sops writes it (the import only reads its shape; nothing here can decrypt it)."""
    return f"ENC[AES256_GCM,data:{data},iv:6mVJFh/Cd3rUxOftuViiskeO+yqJMO3=,tag:853Tsg==,type:str]"


SECRETS = f"""\
registry:
    username: {enc("ZJDzOCmdlpSyXjBOWLTfHfc=")}
    password: {enc("DKriYS18XUAIHdOhlt18/n/a1H3gQJF1JDY=")}
sso:
    client_secret: {enc("afrenhXdvKtpLSmneT/QwGvQJNdagyJz")}
sops:
    age:
        - recipient: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
          enc: |
            -----BEGIN AGE ENCRYPTED FILE-----
            YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBzb21ldGhpbmcK
            -----END AGE ENCRYPTED FILE-----
    lastmodified: "2026-06-07T05:50:51Z"
    mac: ENC[AES256_GCM,data:cdte0nzjZBLARMxNDIDJB7jDJ4fd,iv:3qkg26fbl5T8hDO/U2P5Y=,tag:iK==,type:str]
    version: 3.9.0
"""

FILES = {
    "helmfile.yaml.gotmpl": """\
        environments:
          dev:
            values: [env/dev/values.yaml]
            secrets: [env/dev/secrets.yaml]
          prod:
            values: [env/prod/values.yaml]
            secrets: [env/prod/secrets.yaml]
        ---
        releases:
          - name: app
            namespace: shop
            chart: ./charts/echo
            values: [values/app.yaml.gotmpl]
            set:
              - name: registryUser
                value: {{ .Values.registry.username }}
        """,
    "env/dev/values.yaml": "domain: dev.example.com\n",
    "env/prod/values.yaml": "domain: example.com\n",
    "values/app.yaml.gotmpl": """\
        host: app.{{ .Values.domain }}
        greeting: hello
        registry:
          password: {{ .Values.registry.password }}
        oidc:
          clientSecret: {{ .Values.sso.client_secret | quote }}
        """,
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    gitops = project_with(tmp_path, FILES)
    for env in ("dev", "prod"):
        (gitops / "env" / env / "secrets.yaml").write_text(SECRETS)
    return gitops


def test_environment_secrets_are_imported_as_variables_never_decrypted(
    project: Path, tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    environ = helm_env(tmp_path)
    result = run(
        ["import", "helmfile", "helmfile.yaml.gotmpl", "--helmfile", str(helmfile), "--helm", str(helm3)],
        project,
        environ,
    )
    assert result.code == 0, result.err
    assert "imported helmfile.yaml.gotmpl (2 environment(s))" in result.out
    files = written(project)
    text = "\n".join(files.values())
    # Nothing of the encrypted file, and no marker, reached a written file.
    assert "ENC[" not in text and "zzdeployer" not in text.lower()
    spec = yaml.safe_load(re.sub(r"!var (\w+)", r"var=\1", files["deployer.yaml"]))
    [app] = spec["releases"]
    values = {k: v for entry in app["values"] if isinstance(entry, dict) for k, v in entry.items()}
    # In values: each a sensitive variable whose value comes from the process environment...
    assert values["registry"] == {"password": "var=APP_REGISTRY_PASSWORD"}
    assert values["oidc"] == {"clientSecret": "var=APP_OIDC_CLIENTSECRET"}
    declared = spec["defaults"]["vars"]
    assert declared["APP_REGISTRY_PASSWORD"] == {"value": "${APP_REGISTRY_PASSWORD}", "sensitive": True}
    # ... and in the state itself (set:), the variable named after the key.
    assert values["registryUser"] == "${REGISTRY_USERNAME}"
    # The report: the files, each once, and each value's line.
    lines = result.err
    for env in ("dev", "prod"):
        assert (
            f"env/{env}/secrets.yaml:1: environment secrets: encrypted with sops, and the "
            "import never decrypts"
        ) in lines, lines
    assert "releases[app].values: registry.password: is read from encrypted environment secrets" in lines
    assert "${REGISTRY_USERNAME}" in lines
    # The values helmfile would render, given where deployer runs.
    ci = {"APP_REGISTRY_PASSWORD": "pw-1", "APP_OIDC_CLIENTSECRET": "oidc-2", "REGISTRY_USERNAME": "robot"}
    assert run(["validate", "--no-decrypt"], project, {**environ, **ci}).code == 0
    rendered = run(["template", "-e", "prod"], project, {**environ, **ci, "DEPLOYER_HELM": str(helm3)})
    assert rendered.code == 0, rendered.err
    [config] = [o for k, o in objects(rendered.out).items() if k[1] == "ConfigMap"]
    got = yaml.safe_load(config["data"]["values.yaml"])
    assert got["registry"] == {"password": "pw-1"} and got["oidc"] == {"clientSecret": "oidc-2"}
    assert got["registryUser"] == "robot" and got["host"] == "app.example.com"


def test_the_sandboxs_helm_secrets_refuses_a_file_that_is_not_encrypted(tmp_path: Path) -> None:
    """`helm secrets decrypt` in the sandbox answers only for sops files: anything else is an error
    helmfile reports, never a file passed through as if it were decrypted."""
    from deployer.importer.sops_standin import main

    plain = tmp_path / "plain.yaml"
    plain.write_text("password: in-clear\n")
    assert main(["secrets", "decrypt", str(plain)]) == 1
