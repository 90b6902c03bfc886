"""`ignore:` rules: which objects and fields they name, and what the plan does with them."""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from deployer.desired import resolve
from deployer.ignore import ANY, PathSyntaxError, Rule, parse_path, pointer, strip
from deployer.manifests import ResourceKey
from deployer.plan import INSTALL, NOOP, UNINSTALL, UPGRADE, make_plan
from deployer.project import load_project
from deployer.report import markdown, text, to_json
from testing.planning import deployment, desired, observed

WEB = ResourceKey("apps", "Deployment", "shop", "web")
HOOK = ResourceKey("admissionregistration.k8s.io", "MutatingWebhookConfiguration", "", "shop-hook")


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("/spec/replicas", ("spec", "replicas")),
        ("spec.replicas", ("spec", "replicas")),
        (
            "/metadata/annotations/cert-manager.io~1inject-ca-from",
            ("metadata", "annotations", "cert-manager.io/inject-ca-from"),
        ),
        (
            'metadata.annotations["cert-manager.io/inject-ca-from"]',
            ("metadata", "annotations", "cert-manager.io/inject-ca-from"),
        ),
        ("metadata.annotations['a.b.c']", ("metadata", "annotations", "a.b.c")),
        ("/webhooks/*/clientConfig/caBundle", ("webhooks", ANY, "clientConfig", "caBundle")),
        ("webhooks[*].clientConfig.caBundle", ("webhooks", ANY, "clientConfig", "caBundle")),
        ("webhooks.*.clientConfig.caBundle", ("webhooks", ANY, "clientConfig", "caBundle")),
        ("spec.containers[0].image", ("spec", "containers", "0", "image")),
        ("/a~0b", ("a~b",)),
    ],
)
def test_pointers_and_dotted_paths_parse_to_the_same_segments(text: str, segments: tuple[Any, ...]) -> None:
    assert parse_path(text) == segments


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "cannot be empty"),
        ("/spec//replicas", "empty segment"),
        ("/a~2", "'~' must be followed by 0"),
        ("spec..replicas", "empty segment at column 6"),
        ("spec.", "ends with '.'"),
        ("spec[x]", "write [0] or [*]"),
        ("spec]", "expected '.' or '[' at column 5"),
        ("a.'b'", 'unexpected "\'" at column 3'),
    ],
)
def test_a_path_that_does_not_parse_says_how_to_write_it(text: str, message: str) -> None:
    with pytest.raises(PathSyntaxError, match=re.escape(message)):
        parse_path(text)


def test_objects_match_by_kind_name_namespace_and_optional_group_with_wildcards() -> None:
    assert Rule(kind="Deployment").matches(WEB)
    assert Rule(kind="Deploy*", name="w?b", namespace="sh*").matches(WEB)
    assert Rule(group="apps").matches(WEB)
    assert not Rule(group="").matches(WEB)  # the core group only
    assert not Rule(kind="StatefulSet").matches(WEB)
    assert not Rule(namespace="prod").matches(WEB)
    assert Rule(kind="*WebhookConfiguration").matches(HOOK)  # cluster-scoped: namespace ""
    assert not Rule(kind="deployment").matches(WEB)  # kinds are case-sensitive, as in Kubernetes


def _webhooks(*bundles: str) -> dict[str, Any]:
    return {
        "kind": "MutatingWebhookConfiguration",
        "webhooks": [{"name": f"w{i}", "clientConfig": {"caBundle": b}} for i, b in enumerate(bundles)],
    }


def test_strip_leaves_out_every_list_item_a_wildcard_names_and_counts_each_difference() -> None:
    rule = Rule(fields=(parse_path("webhooks[*].clientConfig.caBundle"),))
    old, new, hidden = strip([rule], HOOK, _webhooks("Cg==", "Cg=="), _webhooks("LS0t", "Cg=="))
    assert (
        old
        == new
        == {
            "kind": "MutatingWebhookConfiguration",
            "webhooks": [{"name": "w0", "clientConfig": {}}, {"name": "w1", "clientConfig": {}}],
        }
    )
    assert hidden == ["/webhooks/0/clientConfig/caBundle"]


def test_strip_counts_a_field_present_on_one_side_only_and_keeps_the_inputs() -> None:
    before: dict[str, Any] = {"metadata": {"annotations": {"a.b/c": "x"}}, "spec": {"replicas": 2}}
    after = {"metadata": {"annotations": {}}, "spec": {"replicas": 2}}
    rule = Rule(fields=(parse_path('metadata.annotations["a.b/c"]'),))
    old, new, hidden = strip([rule], WEB, before, after)
    assert old == new
    assert hidden == ["/metadata/annotations/a.b~1c"]
    assert before["metadata"]["annotations"] == {"a.b/c": "x"}  # not modified


def test_strip_by_index_removes_the_highest_index_first() -> None:
    before = {"items": ["a", "b", "c"]}
    after = {"items": ["a", "B", "C"]}
    rule = Rule(fields=(("items", "1"), ("items", "2")))
    old, new, hidden = strip([rule], WEB, before, after)
    assert old == new == {"items": ["a"]}
    assert hidden == ["/items/1", "/items/2"]


def test_a_rule_for_another_object_changes_nothing() -> None:
    rule = Rule(kind="StatefulSet", fields=(("spec", "replicas"),))
    before, after = {"spec": {"replicas": 1}}, {"spec": {"replicas": 3}}
    assert strip([rule], WEB, before, after) == (before, after, [])


def test_pointer_escapes_slash_and_tilde() -> None:
    assert pointer(("metadata", "annotations", "a/b~c", 0)) == "/metadata/annotations/a~1b~0c/0"


REPLICAS = Rule(kind="Deployment", fields=(("spec", "replicas"),))


def _with_rules(state: Any, *rules: Rule) -> Any:
    return replace(state, release=replace(state.release, ignore=rules))


def test_a_release_whose_only_differences_are_ignored_is_unchanged_and_counts_them() -> None:
    want = _with_rules(desired("web", {}, [deployment("web", 2)]), REPLICAS)
    plan = make_plan("prod", [want], {"shop/web": observed("web", {}, [deployment("web", 5)])})
    (rel,) = plan.releases
    assert rel.action == NOOP
    assert plan.ignored == 1
    assert not plan.has_changes
    out = text(plan)
    assert "Ignored: shop/web: 1 ignored change(s): apps/Deployment shop/web /spec/replicas" in out
    assert "1 ignored change(s) (--no-ignore shows them)." in out
    assert "1 ignored change(s) (`--no-ignore` shows them)." in markdown(plan)
    doc = json.loads(to_json(plan))
    assert doc["schemaVersion"] == 2
    assert doc["ignored"] == 1
    assert doc["releases"][0]["ignored"] == [
        {
            "where": "resources",
            "group": "apps",
            "kind": "Deployment",
            "namespace": "shop",
            "name": "web",
            "path": "/spec/replicas",
        }
    ]


def test_other_changes_of_an_object_still_show_without_the_ignored_field() -> None:
    want = _with_rules(desired("web", {}, [deployment("web", 2, image="web:2")]), REPLICAS)
    plan = make_plan("prod", [want], {"shop/web": observed("web", {}, [deployment("web", 5)])})
    (rel,) = plan.releases
    assert rel.action == UPGRADE
    (change,) = rel.resources
    assert "+      - image: web:2" in change.diff
    assert "replicas" not in change.diff
    assert "0 unchanged. 1 ignored change(s) (--no-ignore shows them).\n" in text(plan)


def test_rules_never_hide_an_install_an_uninstall_or_an_added_object() -> None:
    everything = Rule(fields=((ANY,),))  # every top-level field of every object
    install = _with_rules(desired("new", {}, [deployment("new", 2)]), everything)
    gone = _with_rules(desired("old", {}, [], installed=False), everything)
    grows = _with_rules(desired("web", {}, [deployment("web", 1), deployment("extra", 1)]), everything)
    plan = make_plan(
        "prod",
        [install, gone, grows],
        {
            "shop/old": observed("old", {}, [deployment("old", 1)]),
            "shop/web": observed("web", {}, [deployment("web", 1)]),
        },
    )
    actions = {r.name: (r.action, [(c.key.name, c.change) for c in r.resources]) for r in plan.releases}
    assert actions == {
        "new": (INSTALL, [("new", "added")]),
        "old": (UNINSTALL, [("old", "removed")]),
        "web": (UPGRADE, [("extra", "added")]),
    }
    assert plan.ignored == 0


def test_rules_of_defaults_release_environment_and_environment_release_add_up(tmp_path: Path) -> None:
    (tmp_path / "chart").mkdir()
    (tmp_path / "chart" / "Chart.yaml").write_text("apiVersion: v2\nname: web\nversion: 1.0.0\n")
    (tmp_path / "deployer.yaml").write_text(
        textwrap.dedent("""\
        defaults:
          ignore: [{kind: Deployment, fields: [/spec/replicas]}]
        environments:
          prod:
            ignore: [{kind: Service, fields: [spec.clusterIP]}]
            releases:
              web:
                ignore: [{name: web-*, fields: ['metadata.annotations["a.b/c"]']}]
          dev: {}
        releases:
          - name: web
            chart: ./chart
            namespace: shop
            ignore: [{kind: "*WebhookConfiguration", fields: ["webhooks[*].clientConfig.caBundle"]}]
        """)
    )
    project = load_project(tmp_path / "deployer.yaml", {})
    [prod] = resolve(project, "prod", decrypt=False)
    assert prod.ignore == (
        Rule(kind="Deployment", fields=(("spec", "replicas"),)),
        Rule(kind="*WebhookConfiguration", fields=(("webhooks", ANY, "clientConfig", "caBundle"),)),
        Rule(kind="Service", fields=(("spec", "clusterIP"),)),
        Rule(name="web-*", fields=(("metadata", "annotations", "a.b/c"),)),
    )
    [dev] = resolve(project, "dev", decrypt=False)
    assert dev.ignore == prod.ignore[:2]
