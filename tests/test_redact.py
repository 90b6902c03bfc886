"""Secret texts are masked wherever they appear, in every form a chart gives them. Pure."""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Iterator

import pytest
import yaml

from deployer.errors import HelmError
from deployer.manifests import to_yaml
from deployer.redact import COMPILE_AFTER, MIN_LENGTH, Redactor, for_release, for_values, masked_errors
from deployer.secrets import MASK
from testing.planning import configmap, manifest, secret

CANARY = "canary-s3cret-value"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_every_occurrence_is_masked_and_the_rest_is_kept() -> None:
    redactor = Redactor([CANARY])
    text = f"url: postgres://app:{CANARY}@db:5432/app\nargs: [--password={CANARY}]\n"
    assert redactor.redact(text) == f"url: postgres://app:{MASK}@db:5432/app\nargs: [--password={MASK}]\n"


def test_a_secret_inside_a_longer_secret_is_masked_whole() -> None:
    redactor = Redactor(["canary", "canary-and-more"])
    assert redactor.redact("a canary-and-more b canary c") == f"a {MASK} b {MASK} c"


def test_overlapping_secrets_leave_no_fragment_of_either() -> None:
    redactor = Redactor(["abcd-1234", "1234-wxyz"])
    assert redactor.redact("<abcd-1234-wxyz>") == f"<{MASK}>"


@pytest.mark.parametrize("value", ["abc", "ab", "", "true", "False", "NULL", "yes", "off", "~"])
def test_short_values_and_what_yaml_reads_as_a_boolean_or_null_are_not_secrets(value: str) -> None:
    text = f"enabled: true\nname: {value}\nzone: abc\n"
    assert Redactor([value]).redact(text) == text


def test_a_value_of_exactly_the_minimum_length_is_masked() -> None:
    assert Redactor(["x" * MIN_LENGTH]).redact("a xxxx b") == f"a {MASK} b"


def test_non_string_values_at_sensitive_paths() -> None:
    values = {
        "db": {
            "pin": 98765432,
            "ratio": 0.123456,
            "tls": True,
            "unset": None,
            "hosts": ["canary-host-1", {"user": "canary-user"}],
        },
        "visible": "plain-text",
    }
    redactor = for_values(values, ["db"])
    text = "pin=98765432 ratio=0.123456 tls=True unset=None canary-host-1 canary-user plain-text"
    assert redactor.redact(text) == f"pin={MASK} ratio={MASK} tls=True unset=None {MASK} {MASK} plain-text"


def test_only_values_at_or_below_a_sensitive_path() -> None:
    redactor = for_values({"db": {"password": CANARY, "host": "db.internal"}}, ["db.password"])
    assert redactor.redact(f"{CANARY}@db.internal") == f"{MASK}@db.internal"


def test_the_base64_of_a_secret_is_masked_alone_and_inside_a_longer_encoding() -> None:
    redactor = Redactor([CANARY])
    assert redactor.redact(b64(CANARY)) == MASK
    for prefix in ("", "u:", "us:", "use:", "user:"):
        for suffix in ("", "!", "!!", "!!!"):
            encoded = b64(prefix + CANARY + suffix)
            shown = redactor.redact(encoded)
            assert MASK in shown
            # What remains encodes the prefix and suffix only (plus the bits they share with it).
            assert len(shown.replace(MASK, "")) <= len(b64(prefix + suffix)) + 4


@pytest.mark.parametrize(
    "form",
    [
        json.dumps('pa"ss\\wo\trd-canary')[1:-1],  # toJson, YAML double quotes
        "pa'ss: wo''rd".replace("'", "''"),  # YAML single quotes
        urllib.parse.quote("p@ss/w:rd canary", safe=""),  # urlquery in a DSN
        urllib.parse.quote_plus("p@ss/w:rd canary", safe=""),
    ],
)
def test_escaped_forms_of_a_secret_are_masked(form: str) -> None:
    secrets = ['pa"ss\\wo\trd-canary', "pa'ss: wo''rd", "p@ss/w:rd canary"]
    assert Redactor(secrets).redact(f"x={form};") == f"x={MASK};"


def test_each_long_line_of_a_multi_line_secret_is_masked_where_yaml_splits_it() -> None:
    key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nshort\n-----END KEY-----\n"
    shown = Redactor([key]).redact("data:\n  '-----BEGIN KEY-----\n\n  MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n")
    assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in shown
    assert Redactor([key]).redact("short") == "short"  # short lines are structure, not key material


def test_secret_data_of_both_manifests_is_masked_decoded_and_as_written() -> None:
    before = manifest(secret("db", password="canary-old-password", port="5"))
    after = manifest(secret("db", password="canary-new-password"), configmap("x", a="b"))
    redactor = for_release((), [({}, before), ({}, after)])
    text = f"canary-old-password canary-new-password {b64('canary-new-password')} port=5"
    assert redactor.redact(text) == f"{MASK} {MASK} {MASK} port=5"


def test_string_data_and_binary_data_of_a_secret_are_masked() -> None:
    blob = bytes(range(200, 256))  # not UTF-8: only its base64 can appear in a text
    doc = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "stringData": {"token": "canary-string-token"},
        "data": {"keystore": base64.b64encode(blob).decode()},
    }
    redactor = for_release((), [({}, manifest(doc))])
    text = f"canary-string-token {base64.b64encode(blob).decode()}"
    assert redactor.redact(text) == f"{MASK} {MASK}"


def test_a_configmap_is_not_a_secret() -> None:
    redactor = for_release((), [({}, manifest(configmap("cfg", LOG_LEVEL="warning")))])
    assert redactor.redact("warning") == "warning"


def test_values_in_a_values_table_are_masked_in_strings_and_numbers() -> None:
    redactor = Redactor([CANARY, "98765432"])
    assert redactor.value(f"postgres://app:{CANARY}@db") == f"postgres://app:{MASK}@db"
    assert redactor.value([CANARY, 3, True, None]) == [MASK, 3, True, None]
    assert redactor.value({"a": CANARY}) == {"a": MASK}
    assert redactor.value(98765432) == MASK
    assert redactor.value(12) == 12


def test_secrets_are_read_only_when_something_needs_masking() -> None:
    def never() -> Iterator[str]:
        raise AssertionError("read the secrets of a release with nothing to mask")
        yield ""

    redactor = Redactor(never())
    assert redactor.changes([]) == ()
    assert redactor.redact("") == ""


def test_the_redactor_never_shows_its_secrets() -> None:
    redactor = Redactor([CANARY])
    redactor.redact("warm the cache")
    assert CANARY not in repr(redactor)
    assert CANARY not in str(redactor)


def test_a_helm_error_quoting_a_sensitive_value_is_masked() -> None:
    redactor = for_values({"db": {"password": CANARY}}, ["db.password"])
    stderr = f'Error: YAML parse error: error converting YAML to JSON: line 3: "password: {CANARY}"\n'
    with pytest.raises(HelmError) as caught, masked_errors(redactor):
        raise HelmError(command=["helm", "template", "api"], returncode=1, stderr=stderr, release="shop/api")
    error = caught.value
    assert CANARY not in error.render()
    assert f"password: {MASK}" in error.render()
    assert (error.command, error.returncode, error.release) == (["helm", "template", "api"], 1, "shop/api")
    # The unmasked original must not print as the cause or context of the masked one.
    assert error.__cause__ is None
    assert error.__suppress_context__


def test_a_redactor_masks_the_same_before_and_after_it_compiles_its_pattern() -> None:
    redactor = Redactor(["s3cret-password", "other-secret"])
    texts = [f"line {i}: s3cret-password and other-secret, not other" for i in range(COMPILE_AFTER + 3)]
    masked = [redactor.redact(t) for t in texts]
    assert len(set(masked)) == len(texts)  # each line kept its number
    assert all("s3cret" not in m and "other-secret" not in m and ", not other" in m for m in masked)


def test_objects_are_dumped_as_pyyaml_writes_them_emoji_included() -> None:
    for doc in (
        {"data": {"a": "emoji 😀", "b": "é\x85"}},
        {"kind": "ConfigMap", "data": {"x": "1.0", "y": "y"}},
    ):
        assert to_yaml(doc) == yaml.safe_dump(
            doc, sort_keys=True, default_flow_style=False, allow_unicode=True, width=1000
        )


# grafana's Secret (kube-prometheus-stack): the default admin user `admin` is Secret data, so its
# text is a secret text of the release; its keys and every name that merely contains it must read.
GRAFANA_PASSWORD = "prom-operator-canary"


def grafana(replicas: int, password: str = GRAFANA_PASSWORD) -> list[dict[str, object]]:
    env = [
        {
            "name": "GF_SECURITY_ADMIN_USER",
            "valueFrom": {"secretKeyRef": {"name": "grafana", "key": "admin-user"}},
        },
        {"name": "GF_PATHS_DATA", "value": "/var/lib/grafana/"},
        {"name": "GF_ADMIN_HINT", "value": "--user=admin"},
    ]
    return [
        secret("grafana", **{"admin-user": "admin", "admin-password": password}),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "grafana", "labels": {"app.kubernetes.io/component": "grafana-admin"}},
            "spec": {
                "replicas": replicas,
                "template": {"spec": {"containers": [{"name": "grafana", "env": env}]}},
            },
        },
        configmap(
            "grafana",
            **{"grafana.ini": "[security]\nadmin_user = admin\nadmin.conf = administrator\n", "admin": "x"},
        ),
    ]


def test_a_short_secret_text_is_masked_as_a_value_never_inside_keys_or_longer_names() -> None:
    from deployer.plan import plan_release
    from testing.planning import desired, observed

    install = plan_release(desired("grafana", {}, grafana(1)), None)
    text = "".join(c.diff for c in install.resources)
    # keys read as they are: the Secret's own keys, the env names
    assert "+  admin-user: '<redacted: 5 bytes>'" in text
    assert f"{MASK}-" not in text and f"-{MASK}" not in text
    # a value that merely contains the text is a name, not the secret
    assert "key: admin-user" in text
    assert "app.kubernetes.io/component: grafana-admin" in text
    assert "GF_SECURITY_ADMIN_USER" in text
    # the text itself, where it stands as a value or a word of one, never shows
    assert f"value: --user={MASK}" in text
    assert f"admin_user = {MASK}" in text
    assert "admin.conf = administrator" in text
    assert f"+  {MASK}: x" in text  # a key that is the secret text whole
    upgrade = plan_release(
        desired("grafana", {}, grafana(2, "new-password-canary")), observed("grafana", {}, grafana(1))
    )
    text += "".join(c.diff for c in upgrade.resources)
    assert "+  admin-password: '<redacted: 19 bytes, changed>'" in text
    assert "prom-operator-canary" not in text and "new-password-canary" not in text


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("+  user: admin\n", f"+  user: {MASK}\n"),
        ("+  - admin\n", f"+  - {MASK}\n"),
        ("+  dsn: postgres://admin:pw@db:5432/app\n", f"+  dsn: postgres://{MASK}:pw@db:5432/app\n"),
        ("+  'admin': yes\n", f"+  '{MASK}': yes\n"),  # a key that is the secret text whole
        ("+  admin: x\n", f"+  {MASK}: x\n"),
        ("+  admin-user: x\n", "+  admin-user: x\n"),
        ("+  name: grafana-admin\n", "+  name: grafana-admin\n"),
        ("+  file: admin.conf\n", "+  file: admin.conf\n"),
        ("+  role: administrator\n", "+  role: administrator\n"),
        ("+  role: Admin\n", "+  role: Admin\n"),  # another text: masking is case-sensitive
    ],
)
def test_a_short_secret_text_in_diff_lines(line: str, shown: str) -> None:
    assert Redactor(["admin"]).redact_diff(line) == shown


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("+  name: app-s3cretlong\n", f"+  name: app-{MASK}\n"),  # 8 characters or more: anywhere in a value
        ("+  s3cretlong-key: x\n", "+  s3cretlong-key: x\n"),  # ... but never inside a key
        ("+  s3cretlong: x\n", f"+  {MASK}: x\n"),  # unless the key is the text whole
        ("+  - name: s3cretlong\n", f"+  - name: {MASK}\n"),
        ("--- before: ConfigMap shop/s3cretlong\n", f"--- before: ConfigMap shop/{MASK}\n"),
    ],
)
def test_a_long_secret_text_in_diff_lines(line: str, shown: str) -> None:
    assert Redactor(["s3cretlong"]).redact_diff(line) == shown


def test_free_text_masks_short_texts_as_words_and_long_ones_anywhere() -> None:
    redactor = Redactor(["admin", "s3cretlong"])
    stderr = 'Error: line 3: "user: admin" in grafana-admin; token=xs3cretlongx'
    assert redactor.redact(stderr) == f'Error: line 3: "user: {MASK}" in grafana-admin; token=x{MASK}x'


def test_the_base64_of_a_short_secret_is_masked_as_a_word() -> None:
    redactor = Redactor(["admin"])
    assert redactor.redact_diff(f"+  token: {b64('admin')}\n") == f"+  token: {MASK}\n"
    assert redactor.redact_diff(f"+  blob: x{b64('admin')}\n") == f"+  blob: x{b64('admin')}\n"


def test_a_drift_note_is_free_text_masked_on_every_line() -> None:
    from deployer.manifests import ResourceChange, ResourceKey

    key = ResourceKey("", "ConfigMap", "shop", "cfg")
    note = ResourceChange(
        key, "refused", "ConfigMap shop/cfg: the API server refuses it: admin: s3cretlong\n"
    )
    [shown] = Redactor(["admin", "s3cretlong"]).changes([note])
    assert shown.diff == f"ConfigMap shop/cfg: the API server refuses it: {MASK}: {MASK}\n"
