"""The plan as a terminal/CI text, a pull-request comment and JSON: snapshots (syrupy), limits, secrets."""

from __future__ import annotations

import base64
import json
from typing import Any

from syrupy.assertion import SnapshotAssertion

from deployer.plan import Plan, make_plan
from deployer.report import MARKDOWN_LIMIT, markdown, text, to_json
from testing.planning import configmap, deployment, desired, observed, secret


def scenario() -> Plan:
    base = [configmap("api", LOG_LEVEL="info"), deployment("api", 2), secret("api", API_KEY="canary-old-key")]
    head = [configmap("api", LOG_LEVEL="warn"), deployment("api", 3), secret("api", API_KEY="canary-new-key")]
    return make_plan(
        "prod",
        [
            desired("config", {"region": "eu"}, [configmap("platform", REGION="eu")]),
            desired(
                "api",
                {"replicas": 3, "logLevel": "warn", "apiKey": "canary-new-key"},
                head,
                version="1.3.0",
                needs=("shop/config",),
                sensitive=("apiKey",),
            ),
            desired(
                "worker", {"queue": "orders"}, [deployment("worker", 1)], needs=("shop/config", "shop/api")
            ),
            desired("legacy", {}, [], installed=False),
            desired("cron", {}, []),
        ],
        {
            "shop/config": observed("config", {"region": "eu"}, [configmap("platform", REGION="eu")]),
            "shop/api": observed(
                "api",
                {"replicas": 2, "logLevel": "info", "apiKey": "canary-old-key"},
                base,
                version="1.2.0",
                revision=7,
            ),
            "shop/legacy": observed("legacy", {}, [configmap("legacy", a="b")], revision=2),
            "shop/cron": observed("cron", {}, [], status="pending-upgrade", revision=3),
            "shop/old-batch": observed("old-batch", {}, [deployment("old-batch", 1)], revision=5),
        },
    )


def test_text_report(snapshot: SnapshotAssertion) -> None:
    assert text(scenario()) == snapshot


def test_markdown_report(snapshot: SnapshotAssertion) -> None:
    assert markdown(scenario()) == snapshot


def test_json_report(snapshot: SnapshotAssertion) -> None:
    doc = json.loads(to_json(scenario()))
    assert doc["schemaVersion"] == 2
    assert to_json(scenario()) == snapshot


def test_no_changes_is_one_line() -> None:
    docs = [deployment("api", 1)]
    plan = make_plan("prod", [desired("api", {}, docs)], {"shop/api": observed("api", {}, docs)})
    assert text(plan) == "No changes: 1 release(s) in prod are up to date.\n"


def test_no_secret_value_in_any_format() -> None:
    plan = scenario()
    for rendered in (text(plan), markdown(plan), to_json(plan)):
        assert "canary" not in rendered
        assert "Y2FuYXJ5" not in rendered


def test_a_huge_diff_is_truncated_with_a_visible_note_to_fit_a_comment() -> None:
    big_before = [configmap("big", **{f"KEY_{i:05d}": "a" * 40 for i in range(3000)})]
    big_after = [configmap("big", **{f"KEY_{i:05d}": "b" * 40 for i in range(3000)})]
    plan = make_plan(
        "prod",
        [desired("big", {}, big_after), desired("small", {"x": 2}, [deployment("small", 2)])],
        {
            "shop/big": observed("big", {}, big_before),
            "shop/small": observed("small", {"x": 1}, [deployment("small", 1)]),
        },
    )
    full = markdown(plan, limit=10**9)
    assert len(full) > MARKDOWN_LIMIT
    cut = markdown(plan)
    assert len(cut) <= MARKDOWN_LIMIT
    assert "Diff truncated" in cut
    assert "+  replicas: 2" in cut  # the small release's diff survives whole
    assert cut.count("<details>") == cut.count("</details>") == 2


CANARY = "canary-db-password"
OLD_CANARY = "canary-old-db-password"
TOKEN = "canary-secret-token"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def leaky_docs(password: str) -> list[dict[str, Any]]:
    """What a chart may do with a sensitive value and a Secret's data besides the Secret itself."""
    app = deployment("api", 2)
    container = app["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "DB_PASSWORD", "value": password}]
    container["command"] = ["app", f"--db-password={password}"]
    app["metadata"]["annotations"] = {"example.com/dsn": f"postgres://app:{password}@db/app"}
    return [
        app,
        configmap("settings", DATABASE_URL=f"postgres://app:{password}@db:5432/app"),
        configmap("encoded", PASSWORD_B64=b64(password), AUTH_B64=b64(f"app:{password}")),
        secret("api-token", token=TOKEN),
        configmap("token-copy", TOKEN=TOKEN, TOKEN_B64=b64(TOKEN)),
    ]


def leaky_plan(*, show_secrets: bool = False) -> Plan:
    sensitive = ("db.password",)
    values = {"db": {"password": CANARY, "url": f"postgres://app:{CANARY}@db/app"}}
    old_values = {"db": {"password": OLD_CANARY, "url": f"postgres://app:{OLD_CANARY}@db/app"}}
    return make_plan(
        "prod",
        [
            desired("api", values, leaky_docs(CANARY), sensitive=sensitive),
            desired("fresh", values, leaky_docs(CANARY), sensitive=sensitive),
        ],
        {"shop/api": observed("api", old_values, [configmap("settings", DATABASE_URL=OLD_CANARY)])},
        show_secrets=show_secrets,
    )


def test_a_sensitive_value_is_masked_wherever_a_chart_renders_it_in_every_format() -> None:
    plan = leaky_plan()
    for rendered in (text(plan), markdown(plan), to_json(plan)):
        for leaked in (CANARY, OLD_CANARY, TOKEN, b64(CANARY), b64(OLD_CANARY), b64(TOKEN), "canary"):
            assert leaked not in rendered
        assert "<sensitive>" in rendered
    shown = text(plan)
    assert "DATABASE_URL: postgres://app:<sensitive>@db:5432/app" in shown
    assert "--db-password=<sensitive>" in shown
    assert "example.com/dsn: postgres://app:<sensitive>@db/app" in shown
    assert 'db.url: "postgres://app:<sensitive>@db/app"' in shown  # a non-sensitive value holding it


def test_show_secrets_shows_them_in_every_format() -> None:
    plan = leaky_plan(show_secrets=True)
    for rendered in (text(plan), markdown(plan), to_json(plan)):
        assert CANARY in rendered
        assert TOKEN in rendered
    assert b64(CANARY) in to_json(plan)
