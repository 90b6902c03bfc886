"""sops-encrypted values files, with real age keys and the real sops binary: decrypted in memory,
every leaf they set sensitive, one-line errors naming the file, and no secret in the render cache."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest

from testing.cli import Result, run
from testing.gitrepo import git
from testing.sops import CANARY, HOST_CANARY, AgeKey, age_key, encrypt, make_project
from testing.tools import sops_binary

FORGED = f"ENC[AES256_GCM,data:AAAA,iv:{'A' * 43}=,tag:{'A' * 22}==,type:str]"  # well-formed, never encrypted


@pytest.fixture
def key(tmp_path: Path) -> AgeKey:
    return age_key(tmp_path / "keys")


@pytest.fixture
def project(tmp_path: Path, key: AgeKey) -> Path:
    return make_project(tmp_path / "project", key)


@pytest.fixture
def env(key: AgeKey, tmp_path: Path, cache: Path) -> dict[str, str | None]:
    return {
        "DEPLOYER_SOPS": str(sops_binary()),
        "SOPS_AGE_KEY_FILE": str(key.file),
        "SOPS_AGE_KEY": None,
        "HOME": str(tmp_path / "home"),  # no ~/.config/sops/age/keys.txt, no ~/.ssh keys
        "XDG_CONFIG_HOME": None,
        "DEPLOYER_CACHE_DIR": str(cache),
    }


def no_canary(*results: Result) -> None:
    for result in results:
        for canary in (CANARY, HOST_CANARY, base64.b64encode(CANARY.encode()).decode()):
            assert canary not in result.out + result.err


def test_values_masks_every_leaf_of_an_encrypted_file(project: Path, env: dict[str, str | None]) -> None:
    result = run(["values", "-e", "dev", "api"], project, env)
    assert result.code == 0, result.err
    assert result.out == (
        "db:\n"
        "  host: <sensitive>\n"
        "  password: <sensitive>\n"
        "  user: <sensitive>\n"
        "dsnConfigMap: true\n"
        "image: nginx:1.28\n"
        "replicaCount: 2\n"
    )
    no_canary(result)


def test_explain_names_the_encrypted_files_lines_and_masks_their_values(
    project: Path, env: dict[str, str | None]
) -> None:
    result = run(["values", "-e", "dev", "api", "--explain"], project, env)
    assert result.code == 0, result.err
    assert result.out == (
        "db.host = <sensitive>    # environments/dev/secrets.enc.yaml:3:15\n"
        "db.password = <sensitive>    # secrets/api.enc.yaml:3:15\n"
        "db.user = <sensitive>    # secrets/api.enc.yaml:2:11\n"
        "dsnConfigMap = true    # values/api.yaml:2:15\n"
        'image = "nginx:1.28"    # environments/dev/values.yaml:2:10\n'
        "replicaCount = 2    # values/api.yaml:1:15\n"
    )
    lines = (project / "secrets" / "api.enc.yaml").read_text().splitlines()
    assert lines[1].startswith("    user: ENC[") and lines[2].startswith("    password: ENC[")
    no_canary(result)


def test_show_secrets_shows_the_decrypted_values(project: Path, env: dict[str, str | None]) -> None:
    result = run(["values", "-e", "dev", "api", "--show-secrets"], project, env)
    assert f"  password: {CANARY}\n" in result.out
    assert f"  host: {HOST_CANARY}\n" in result.out


def test_a_plain_layer_above_keeps_an_encrypted_path_masked(
    project: Path, env: dict[str, str | None]
) -> None:
    result = run(["values", "-e", "dev", "api", "--set", "db.user=plain", "--explain"], project, env)
    assert "db.user = <sensitive>    # --set db.user=<sensitive>\n" in result.out
    assert "    overrides <sensitive>    # secrets/api.enc.yaml:2:11\n" in result.out


def test_template_gives_helm_the_decrypted_values_and_logs_none(
    project: Path, env: dict[str, str | None], helm: Path
) -> None:
    result = run(["template", "-e", "dev"], project, {**env, "DEPLOYER_HELM": str(helm)})
    assert result.code == 0, result.err
    # `template` prints what helm renders (README): the chart put the password in its Secret.
    assert f'password: "{base64.b64encode(CANARY.encode()).decode()}"' in result.out
    assert CANARY not in result.err and HOST_CANARY not in result.err


def test_validate_decrypts_each_file_and_prints_nothing_from_it(
    project: Path, env: dict[str, str | None]
) -> None:
    result = run(["validate"], project, env)
    assert (result.code, result.out, result.err) == (0, "deployer.yaml: ok (1 releases; checked dev)\n", "")


def test_validate_no_decrypt_needs_neither_sops_nor_a_key(project: Path, env: dict[str, str | None]) -> None:
    result = run(
        ["validate", "--no-decrypt"],
        project,
        {**env, "DEPLOYER_SOPS": "/nonexistent/sops", "SOPS_AGE_KEY_FILE": None},
    )
    assert (result.code, result.out, result.err) == (0, "deployer.yaml: ok (1 releases; checked dev)\n", "")


def test_validate_decrypts_what_no_decrypt_only_checks(project: Path, env: dict[str, str | None]) -> None:
    result = run(["validate"], project, {**env, "SOPS_AGE_KEY_FILE": None})
    assert result.code == 1


def failing(project: Path, env: dict[str, str | None], cache: Path, **changes: str | None) -> Result:
    """`template` with a decryption problem: exit 1, nothing on stdout, nothing rendered or cached."""
    result = run(["template", "-e", "dev"], project, {**env, **changes, "DEPLOYER_HELM": "/nonexistent"})
    assert result.code == 1
    assert result.out == ""
    assert not cache.exists()
    no_canary(result)
    return result


def test_no_key_is_one_line_per_file(project: Path, env: dict[str, str | None], cache: Path) -> None:
    result = failing(project, env, cache, SOPS_AGE_KEY_FILE=None)
    assert result.err == (
        "error: cannot decrypt environments/dev/secrets.enc.yaml: no key to decrypt it was found "
        "(set SOPS_AGE_KEY_FILE, or the key sops needs for its recipients)\n"
        "error: cannot decrypt secrets/api.enc.yaml: no key to decrypt it was found "
        "(set SOPS_AGE_KEY_FILE, or the key sops needs for its recipients)\n"
    )


def test_wrong_key(project: Path, env: dict[str, str | None], cache: Path, tmp_path: Path) -> None:
    other = age_key(tmp_path / "other-keys")
    (project / "environments" / "dev" / "secrets.enc.yaml").unlink()
    (project / "deployer.yaml").write_text(
        (project / "deployer.yaml").read_text().replace(", environments/dev/secrets.enc.yaml", "")
    )
    result = failing(project, env, cache, SOPS_AGE_KEY_FILE=str(other.file))
    assert result.err == (
        "error: cannot decrypt secrets/api.enc.yaml: none of your keys is one it was encrypted for "
        "(wrong SOPS_AGE_KEY_FILE or key?)\n"
    )


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda t: t.replace("data:", "data:A", 1), id="ciphertext"),
        pytest.param(
            lambda t: t.replace("    mac: ENC[AES256_GCM,data:", "    mac: ENC[AES256_GCM,data:A"), id="mac"
        ),
        pytest.param(
            lambda t: t.replace(
                "db:\n",
                f"db:\n    extra: {FORGED}\n",
                1,
            ),
            id="added-value",
        ),
    ],
)
def test_tampered_file(
    project: Path, env: dict[str, str | None], cache: Path, tamper: Callable[[str], str]
) -> None:
    path = project / "secrets" / "api.enc.yaml"
    path.write_text(tamper(path.read_text()))
    result = failing(project, env, cache)
    assert result.err == (
        "error: cannot decrypt secrets/api.enc.yaml: it was changed after it was encrypted "
        "(sops' integrity check failed); restore it from Git or edit it with `sops`\n"
    )


def test_sops_missing(project: Path, env: dict[str, str | None], cache: Path) -> None:
    result = failing(project, env, cache, DEPLOYER_SOPS="/nonexistent/sops")
    assert result.err == (
        "error: sops not found (looked in DEPLOYER_SOPS=/nonexistent/sops); it is needed to decrypt "
        "encrypted values files: install sops or point --sops / DEPLOYER_SOPS at it\n"
    )


def test_sops_flag_wins_over_the_environment(project: Path, env: dict[str, str | None]) -> None:
    result = run(
        ["values", "--sops", str(sops_binary()), "-e", "dev", "api"],
        project,
        {**env, "DEPLOYER_SOPS": "/nonexistent/sops"},
    )
    assert result.code == 0, result.err


def cache_holds_no_secret(cache: Path, *texts: str) -> int:
    """Every file under the cache, walked: none holds a secret text (or its base64); returns how
    many scrubbed tokens the renders hold."""
    tokens = 0
    for path in cache.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for text in texts:
                assert text.encode() not in data, path
                assert base64.b64encode(text.encode()) not in data, path
            tokens += data.count(b"SCRUBBED-hmac-")
    return tokens


def test_diff_base_from_the_cache_shows_no_false_change_and_the_cache_holds_no_secret(
    project: Path, env: dict[str, str | None], cache: Path, helm: Path
) -> None:
    git(project, "init", "-q", ".")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "init")
    values = project / "values" / "api.yaml"
    values.write_text(values.read_text().replace("replicaCount: 2", "replicaCount: 3"))
    env = {**env, "DEPLOYER_HELM": str(helm)}

    first = run(["diff", "-e", "dev", "--base", "HEAD"], project, env)
    second = run(["diff", "-e", "dev", "--base", "HEAD"], project, env)

    assert first.code == second.code == 0, first.err
    assert "(0 from the render cache)" in first.err
    assert second.err.count("(1 from the render cache)") == 2  # the base and the new spec
    assert first.out == second.out
    assert "~ apps/Deployment apps/api" in first.out
    assert "Secret" not in first.out and "ConfigMap" not in first.out  # unchanged, from a cached render
    no_canary(first, second)
    assert cache_holds_no_secret(cache, CANARY, HOST_CANARY, "app-user") >= 8

    # A new password: the Secret is `changed`, with the new size, computed from the restored render.
    new = "pw-canary-NEW-0123456789"
    encrypt(
        f"db:\n  user: app-user\n  password: {new}\n", project / "secrets" / "api.enc.yaml", age_key_of(env)
    )
    values.write_text(values.read_text().replace("dsnConfigMap: true", "dsnConfigMap: false"))
    git(project, "add", "-A")
    git(project, "commit", "-qm", "dsn off")
    encrypt(
        f"db:\n  user: app-user\n  password: {CANARY}\n",
        project / "secrets" / "api.enc.yaml",
        age_key_of(env),
    )
    changed = run(["diff", "-e", "dev", "--base", "HEAD"], project, env)
    assert changed.code == 0, changed.err
    assert f"-  password: '<redacted: {len(new)} bytes>'\n" in changed.out
    assert f"+  password: '<redacted: {len(CANARY)} bytes, changed>'\n" in changed.out
    assert new not in changed.out + changed.err
    again = run(["diff", "-e", "dev", "--base", "HEAD"], project, env)
    assert again.err.count("(1 from the render cache)") == 2
    assert again.out == changed.out  # `changed` and sizes are the same from cached renders
    no_canary(changed, again)
    assert new not in again.out + again.err
    cache_holds_no_secret(cache, CANARY, HOST_CANARY, new)


def age_key_of(env: dict[str, str | None]) -> AgeKey:
    file = Path(str(env["SOPS_AGE_KEY_FILE"]))
    recipient = next(
        line.split(": ", 1)[1] for line in file.read_text().splitlines() if line.startswith("# public key: ")
    )
    return AgeKey(file, recipient)
