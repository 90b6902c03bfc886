"""plan(desired, observed): the action for each release, exact diffs, and no noise. Pure."""

from __future__ import annotations

from dataclasses import replace

from deployer.manifests import ResourceChange, ResourceKey
from deployer.plan import BLOCKED, INSTALL, NOOP, PRUNE, UNINSTALL, UPGRADE, make_plan, with_drift
from testing.planning import configmap, deployment, desired, observed, secret


def test_identical_desired_and_observed_plan_nothing() -> None:
    docs = [configmap("cfg", a="1"), deployment("api", 2)]
    plan = make_plan(
        "prod", [desired("api", {"replicas": 2}, docs)], {"shop/api": observed("api", {"replicas": 2}, docs)}
    )
    assert not plan.has_changes
    assert [r.action for r in plan.releases] == [NOOP]
    assert plan.order == ()


def test_one_changed_value_shows_exactly_that_field_in_exactly_that_resource() -> None:
    before = [configmap("cfg", a="1"), deployment("api", 2)]
    after = [configmap("cfg", a="1"), deployment("api", 3)]
    plan = make_plan(
        "prod",
        [desired("api", {"replicas": 3}, after)],
        {"shop/api": observed("api", {"replicas": 2}, before)},
    )
    [rel] = plan.releases
    assert rel.action == UPGRADE
    [res] = rel.resources
    assert str(res.key) == "apps/Deployment shop/api"
    changed = [line for line in res.diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == ["-  replicas: 2", "+  replicas: 3"]
    [value] = rel.values
    assert (value.path, value.before, value.after, value.source) == (
        "replicas",
        2,
        3,
        "environments/prod/values.yaml:1:3",
    )


def test_actions_install_upgrade_uninstall_prune_blocked() -> None:
    docs = [configmap("x", a="1")]
    plan = make_plan(
        "prod",
        [
            desired("new", {}, docs),
            desired("bumped", {}, docs, version="2.0.0"),
            desired("retired", {}, docs, installed=False),
            desired("stuck", {}, docs),
        ],
        {
            "shop/bumped": observed("bumped", {}, docs, version="1.0.0"),
            "shop/retired": observed("retired", {}, docs),
            "shop/stuck": observed("stuck", {}, docs, status="pending-upgrade", revision=4),
            "shop/gone": observed("gone", {}, docs),
            "shop/foreign": observed("foreign", {}, docs, environment=None),
            "shop/staging-only": observed("staging-only", {}, docs, environment="staging"),
        },
    )
    actions = {r.key: r.action for r in plan.releases}
    assert actions == {
        "shop/new": INSTALL,
        "shop/bumped": UPGRADE,
        "shop/retired": UNINSTALL,
        "shop/stuck": BLOCKED,
        "shop/gone": PRUNE,
    }
    assert plan.releases[[r.key for r in plan.releases].index("shop/stuck")].reasons == (
        "revision 4 is pending-upgrade; run `deployer apply --recover`",
    )


def test_apply_order_follows_needs_and_removals_run_last_in_reverse() -> None:
    docs = [configmap("x", a="1")]
    plan = make_plan(
        "prod",
        [
            desired("db", {}, docs),
            desired("api", {}, docs, needs=("shop/db",)),
            desired("web", {}, docs, needs=("shop/api",)),
            desired("old-a", {}, docs, installed=False),
            desired("old-b", {}, docs, installed=False, needs=("shop/old-a",)),
        ],
        {"shop/old-a": observed("old-a", {}, docs), "shop/old-b": observed("old-b", {}, docs)},
    )
    assert plan.order == (("shop/db",), ("shop/api",), ("shop/web",), ("shop/old-b",), ("shop/old-a",))


def test_secret_values_never_appear_only_keys_and_sizes() -> None:
    before = [secret("creds", password="canary-old-value", user="app")]
    after = [secret("creds", password="canary-new-value", user="app", token="canary-token")]
    plan = make_plan("prod", [desired("api", {}, after)], {"shop/api": observed("api", {}, before)})
    [res] = plan.releases[0].resources
    assert "canary" not in res.diff
    assert "Y2FuYXJ5" not in res.diff  # nor their base64 ("canary" -> "Y2FuYXJ5")
    assert "-  password: '<redacted: 16 bytes>'" in res.diff
    assert "+  password: '<redacted: 16 bytes, changed>'" in res.diff
    assert "+  token: '<redacted: 12 bytes>'" in res.diff


def test_sensitive_values_paths_are_masked_in_the_values_diff() -> None:
    plan = make_plan(
        "prod",
        [desired("api", {"db": {"password": "canary-new"}}, [], sensitive=("db.password",))],
        {"shop/api": observed("api", {"db": {"password": "canary-old"}}, [])},
    )
    [value] = plan.releases[0].values
    assert (value.before, value.after) == ("<sensitive>", "<sensitive>")
    shown = make_plan(
        "prod",
        [desired("api", {"db": {"password": "canary-new"}}, [], sensitive=("db.password",))],
        {"shop/api": observed("api", {"db": {"password": "canary-old"}}, [])},
        show_secrets=True,
    )
    assert shown.releases[0].values[0].after == "canary-new"


def test_a_selector_run_never_proposes_to_prune() -> None:
    plan = make_plan("prod", [], {"shop/gone": observed("gone", {}, [])}, prune_candidates=False)
    assert plan.releases == ()


def test_prune_never_proposes_releases_of_another_project_with_the_same_environment_name() -> None:
    theirs = observed("theirs", {}, [])
    theirs = replace(theirs, labels={**theirs.labels, "deployer-project": "other-repo"})
    plan = make_plan("prod", [], {"shop/gone": observed("gone", {}, []), "shop/theirs": theirs})
    assert [(r.key, r.action) for r in plan.releases] == [("shop/gone", PRUNE)]


def test_drift_found_later_is_masked_with_the_release_secrets() -> None:
    docs = [configmap("cfg", URL="postgres://app:canary-password@db")]
    release = desired("api", {"db": {"password": "canary-password"}}, docs, sensitive=("db.password",))
    live = ResourceChange(
        ResourceKey("", "ConfigMap", "shop", "cfg"),
        "drifted",
        "-  URL: postgres://app:canary-password@db\n+  URL: postgres://app:canary-password@db2\n",
    )
    for show_secrets, shown in ((False, False), (True, True)):
        plan = make_plan(
            "prod",
            [release],
            {"shop/api": observed("api", {"db": {"password": "canary-password"}}, docs)},
            show_secrets=show_secrets,
        )
        [rel] = with_drift(plan, {"shop/api": [live]}).releases
        assert rel.action == UPGRADE
        assert ("canary-password" in rel.drift[0].diff) is shown


def test_a_pruned_release_masks_its_secret_data_wherever_it_appears() -> None:
    docs = [secret("creds", token="canary-token"), configmap("copy", TOKEN="canary-token")]
    plan = make_plan("prod", [], {"shop/gone": observed("gone", {}, docs)})
    [rel] = plan.releases
    assert rel.action == PRUNE
    assert all("canary" not in r.diff for r in rel.resources)
    shown = make_plan("prod", [], {"shop/gone": observed("gone", {}, docs)}, show_secrets=True)
    assert any("canary-token" in r.diff for r in shown.releases[0].resources)


def test_a_plan_never_shows_its_redactor() -> None:
    docs = [secret("creds", token="canary-token")]
    plan = make_plan("prod", [desired("api", {}, docs)], {})
    assert "canary" not in repr(plan)
