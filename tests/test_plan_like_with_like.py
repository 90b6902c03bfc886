"""The plan compares like with like: manifest with manifest, hooks with hooks, Chart.yaml's name with
the stored chart name; failed and uninstalling releases get the action that can fix them. Pure."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import yaml

from deployer.manifests import split_hooks
from deployer.observed import Status, stored_hooks
from deployer.plan import BLOCKED, INSTALL, NOOP, UPGRADE, make_plan
from deployer.report import text, to_json
from testing.planning import configmap, deployment, desired, observed

TEST_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "api-test-connection",
        "annotations": {"helm.sh/hook": "test", "helm.sh/hook-delete-policy": "before-hook-creation"},
    },
    "spec": {"containers": [{"name": "wget", "image": "busybox"}]},
}
MIGRATE_JOB: dict[str, Any] = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "api-migrate", "annotations": {"helm.sh/hook": "pre-upgrade,pre-install"}},
    "spec": {"template": {"spec": {"containers": [{"name": "m", "image": "api:1"}]}}},
}


def template_output(*docs: dict[str, Any]) -> str:
    """What `helm template` prints: the manifest, then every hook (tests included)."""
    return "".join(f"---\n# Source: api/templates/t{i}.yaml\n{yaml.safe_dump(d)}" for i, d in enumerate(docs))


def stored(*hooks: dict[str, Any]) -> str:
    return stored_hooks(
        [{"path": f"api/templates/h{i}.yaml", "manifest": yaml.safe_dump(h)} for i, h in enumerate(hooks)]
    )


def test_template_output_splits_into_the_stored_manifest_and_hooks() -> None:
    manifest, hooks = split_hooks(template_output(deployment("api", 2), TEST_POD, MIGRATE_JOB))
    assert "kind: Deployment" in manifest and "helm.sh/hook" not in manifest
    assert "kind: Pod" in hooks and "kind: Job" in hooks and "kind: Deployment" not in hooks


def test_unchanged_hooks_and_tests_plan_nothing() -> None:
    _manifest, hooks = split_hooks(template_output(deployment("api", 2), TEST_POD, MIGRATE_JOB))
    want = replace(desired("api", {}, [deployment("api", 2)]), hooks=hooks)
    have = replace(observed("api", {}, [deployment("api", 2)]), hooks=stored(TEST_POD, MIGRATE_JOB))
    plan = make_plan("prod", [want], {"shop/api": have})
    assert [r.action for r in plan.releases] == [NOOP]
    assert not plan.has_changes


def test_a_changed_hook_job_is_an_upgrade_shown_in_its_own_section() -> None:
    newer = {**MIGRATE_JOB, "spec": {"template": {"spec": {"containers": [{"name": "m", "image": "api:2"}]}}}}
    _manifest, hooks = split_hooks(template_output(deployment("api", 2), TEST_POD, newer))
    want = replace(desired("api", {}, [deployment("api", 2)]), hooks=hooks)
    have = replace(observed("api", {}, [deployment("api", 2)]), hooks=stored(TEST_POD, MIGRATE_JOB))
    [rel] = make_plan("prod", [want], {"shop/api": have}).releases
    assert rel.action == UPGRADE
    assert rel.reasons == ("1 hook(s) changed",)
    assert rel.resources == ()
    [hook] = rel.hooks
    assert str(hook.key) == "batch/Job shop/api-migrate"
    assert "-      - image: api:1\n+      - image: api:2\n" in hook.diff
    report = text(make_plan("prod", [want], {"shop/api": have}))
    assert (
        "    hooks (run by helm, not kept as release resources):\n      ~ batch/Job shop/api-migrate"
        in report
    )
    assert '"hooks": [' in to_json(make_plan("prod", [want], {"shop/api": have}))


def test_the_chart_is_named_from_chart_yaml_not_from_its_directory() -> None:
    docs = [configmap("cfg", a="1")]
    want = replace(desired("api", {}, docs), chart_name="api-service")  # ./charts/api holds api-service
    have = replace(observed("api", {}, docs), chart="api-service")
    [rel] = make_plan("prod", [want], {"shop/api": have}).releases
    assert (rel.action, rel.chart) == (NOOP, "api-service")


def test_a_failed_upgrade_is_upgraded_again_from_the_last_deployed_revision() -> None:
    docs = [configmap("cfg", a="1")]
    have = replace(observed("api", {}, docs, status="failed", revision=3), last_deployed_revision=2)
    [rel] = make_plan("prod", [desired("api", {}, docs)], {"shop/api": have}).releases
    assert rel.action == UPGRADE
    assert rel.reasons == ("revision 3 failed; helm upgrades from revision 2, the last deployed",)
    assert not rel.replace


def test_a_release_whose_only_revision_failed_is_replaced() -> None:
    docs = [configmap("cfg", a="1")]
    have = observed("api", {}, docs, status="failed", revision=1)
    plan = make_plan("prod", [desired("api", {}, docs)], {"shop/api": have})
    [rel] = plan.releases
    assert (rel.action, rel.replace) == (INSTALL, True)
    assert rel.reasons == ("revision 1 failed and never deployed: uninstall it, then install anew",)
    assert '"replace": true' in to_json(plan)


def test_an_uninstalling_release_is_blocked_with_its_own_message() -> None:
    have = observed("api", {}, [], status="uninstalling", revision=2)
    [rel] = make_plan("prod", [desired("api", {}, [])], {"shop/api": have}).releases
    assert rel.action == BLOCKED
    assert rel.reasons == (
        "revision 2 is uninstalling (helm is removing it, or a removal died); "
        "finish it with `helm uninstall api -n shop`, then apply",
    )


def test_an_uninstalled_release_kept_in_history_is_installed() -> None:
    have = observed("api", {}, [], status="uninstalled", revision=2)
    [rel] = make_plan("prod", [desired("api", {}, [])], {"shop/api": have}).releases
    assert rel.action == INSTALL
    assert have.status is Status.UNINSTALLED


def test_a_changed_crd_file_is_a_note_not_a_change() -> None:
    docs = [configmap("cfg", a="1")]
    want = replace(desired("api", {}, docs), crds={"crds/widgets.yaml": "new", "crds/gadgets.yaml": "g"})
    have = replace(observed("api", {}, docs), crds={"crds/widgets.yaml": "old"})
    plan = make_plan("prod", [want], {"shop/api": have})
    [rel] = plan.releases
    assert rel.action == NOOP
    assert rel.notes == (
        "crds/gadgets.yaml is new: helm does not install CRDs on upgrade; set `crds: createReplace` on "
        "the release to have deployer apply it",
        "crds/widgets.yaml changed since the release was installed: helm never upgrades CRDs; set "
        "`crds: createReplace` on the release to have deployer apply it before the upgrade",
    )
    assert not plan.has_changes
    assert text(plan).splitlines()[1] == f"Note: shop/api: {rel.notes[0]}"


def test_a_sensitive_value_rendered_into_a_hook_is_masked_in_the_hooks_section() -> None:
    def job(password: str) -> dict[str, Any]:
        container = {"name": "m", "image": "api:1", "env": [{"name": "DB_PASSWORD", "value": password}]}
        return {**MIGRATE_JOB, "spec": {"template": {"spec": {"containers": [container]}}}}

    _manifest, hooks = split_hooks(template_output(job("canary-new-password")))
    want = replace(
        desired("api", {"db": {"password": "canary-new-password"}}, [], sensitive=("db.password",)),
        hooks=hooks,
    )
    have = replace(
        observed("api", {"db": {"password": "canary-old-password"}}, []),
        hooks=stored(job("canary-old-password")),
    )
    plan = make_plan("prod", [want], {"shop/api": have})
    [hook] = plan.releases[0].hooks
    assert "-          value: <sensitive>\n+          value: <sensitive>\n" in hook.diff
    assert "canary" not in text(plan) + to_json(plan)


def test_a_hook_the_chart_renames_on_every_render_is_not_a_change_but_its_content_is() -> None:
    def test_pod(name: str, image: str = "busybox") -> dict[str, Any]:
        return {
            **TEST_POD,
            "metadata": {**TEST_POD["metadata"], "name": name},
            "spec": {"containers": [{"name": "wget", "image": image}]},
        }

    def plan_for(rendered: dict[str, Any]) -> Any:
        # Both come from the same template, as `helm template` and the stored hooks say.
        _manifest, hooks = split_hooks(template_output(rendered).replace("/t0.yaml", "/h0.yaml"))
        want = replace(desired("api", {}, []), hooks=hooks)
        have = replace(observed("api", {}, []), hooks=stored(test_pod("api-test-x7k2q")))
        return make_plan("prod", [want], {"shop/api": have}).releases[0]

    assert plan_for(test_pod("api-test-9fz1m")).action == NOOP  # podinfo's randAlphaNum test pods
    changed = plan_for(test_pod("api-test-9fz1m", image="busybox:2"))
    assert changed.action == UPGRADE
    assert [(str(h.key), h.change) for h in changed.hooks] == [
        ("Pod shop/api-test-9fz1m", "added"),
        ("Pod shop/api-test-x7k2q", "removed"),
    ]
