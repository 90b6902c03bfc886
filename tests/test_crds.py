"""`crds: createReplace`, the pure parts: how a CRD change is summarised, when it is refused, and
what it does to the plan and its reports."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from deployer.crds import CrdChange, documents, dropped_stored_versions, summarize
from deployer.plan import BLOCKED, NOOP, UPGRADE, make_plan, with_crds
from deployer.report import markdown, text, to_json
from testing.planning import configmap, desired, observed


def version(name: str, *, storage: bool = True, served: bool = True, **spec: Any) -> dict[str, Any]:
    return {
        "name": name,
        "served": served,
        "storage": storage,
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "properties": {"spec": {"type": "object", "properties": spec}},
            }
        },
    }


def crd(*versions: dict[str, Any], stored: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "versions": list(versions)},
    }
    if stored:
        out["status"] = {"storedVersions": list(stored)}
    return out


STRING = {"type": "string"}
LIST = {"type": "array", "items": {"type": "object", "properties": {"name": STRING}}}


def test_a_summary_names_fields_added_and_removed_per_version_as_paths() -> None:
    live = crd(version("v1", size={"type": "integer"}, tags=LIST))
    new = crd(version("v1", size={"type": "integer"}, color=STRING))
    assert summarize(live, new) == (
        "version v1: field(s) added: .spec.color",
        "version v1: field(s) removed: .spec.tags, .spec.tags[].name",
    )


def test_a_summary_names_versions_added_removed_and_their_flags() -> None:
    live = crd(version("v1alpha1", storage=False), version("v1"))
    new = crd(version("v1", storage=False), version("v2"))
    assert summarize(live, new) == (
        "version v1: served, storage -> served",
        "version v1alpha1 removed",
        "version v2 added (served, storage)",
    )


def test_a_summary_of_a_change_without_new_fields_says_what_kind_of_change() -> None:
    live = crd(version("v1", size={"type": "integer"}))
    new = crd(version("v1", size={"type": "integer", "minimum": 1}))
    assert summarize(live, new) == ("version v1: schema changed (types, validations or descriptions)",)
    renamed = {**new, "spec": {**new["spec"], "names": {"plural": "gadgets"}}}
    assert summarize(new, renamed) == ("spec: names changed",)


def test_dropping_a_stored_version_is_found_and_others_are_not() -> None:
    live = crd(version("v1"), stored=("v1alpha1", "v1"))
    assert dropped_stored_versions(live, crd(version("v1"))) == ["v1alpha1"]
    assert dropped_stored_versions(live, crd(version("v1alpha1", storage=False), version("v1"))) == []


def test_documents_reads_every_crd_of_the_files_sorted_by_name_and_nothing_else() -> None:
    texts = {
        "crds/b.yaml": "kind: CustomResourceDefinition\nmetadata: {name: b.example.com}\n---\nkind: Secret\n",
        "crds/a.yaml": "---\nkind: CustomResourceDefinition\nmetadata: {name: a.example.com}\n",
    }
    assert [d["metadata"]["name"] for d in documents(texts)] == ["a.example.com", "b.example.com"]


def _plan(changes: list[CrdChange]) -> Any:
    docs = [configmap("cfg", a="1")]
    want = desired("api", {}, docs)
    want = replace(want, release=replace(want.release, crds="createReplace"))
    plan = make_plan("prod", [want], {"shop/api": observed("api", {}, docs)})
    assert plan.releases[0].action == NOOP
    return with_crds(plan, {"shop/api": changes})


def test_a_crd_change_alone_is_an_upgrade_shown_in_every_format() -> None:
    plan = _plan([CrdChange("widgets.example.com", "changed", ("version v1: field(s) added: .spec.color",))])
    [rel] = plan.releases
    assert (rel.action, rel.reasons) == (UPGRADE, ("1 CRD(s) to apply (crds: createReplace)",))
    assert (
        "    CRDs (crds: createReplace; applied server-side before the release):\n"
        "      ~ CustomResourceDefinition widgets.example.com\n"
        "          version v1: field(s) added: .spec.color\n"
    ) in text(plan)
    assert (
        "**CRDs** (applied server-side before the release: `crds: createReplace`)\n\n```diff\n"
        "~ CustomResourceDefinition widgets.example.com\n    version v1: field(s) added: .spec.color\n```"
    ) in markdown(plan)
    assert json.loads(to_json(plan))["releases"][0]["crds"] == [
        {
            "name": "widgets.example.com",
            "change": "changed",
            "summary": ["version v1: field(s) added: .spec.color"],
        }
    ]


def test_a_refused_crd_change_blocks_the_release_with_the_reason() -> None:
    plan = _plan(
        [CrdChange("widgets.example.com", "refused", ("CRD widgets.example.com: the chart drops ...",))]
    )
    [rel] = plan.releases
    assert (rel.action, rel.reasons) == (BLOCKED, ("CRD widgets.example.com: the chart drops ...",))
    assert plan.order == ()
