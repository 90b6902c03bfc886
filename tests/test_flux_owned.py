"""A release a Flux HelmRelease manages: deployer recognises it from helm-controller's labels, says
so, and does not report those labels as a change (docs/diff.md, normalization rule 5)."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from deployer.manifests import FLUX_LABELS, flux_owner
from deployer.plan import NOOP, UPGRADE, make_plan
from testing.planning import configmap, deployment, desired, manifest, observed


def flux_labelled(doc: dict[str, Any], **extra: str) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    labels = out["metadata"].setdefault("labels", {})
    labels.update({FLUX_LABELS[0]: "api", FLUX_LABELS[1]: "flux-system", **extra})
    return out


def test_the_owner_is_read_from_helm_controllers_labels() -> None:
    assert flux_owner(manifest(flux_labelled(configmap("cfg", a="1")))) == "flux-system/api"
    assert flux_owner(manifest(configmap("cfg", a="1"))) is None


def test_a_flux_owned_release_with_only_fluxs_labels_added_is_unchanged_and_noted() -> None:
    docs = [configmap("cfg", a="1"), deployment("api", 2)]
    seen = observed("api", {"replicas": 2}, [flux_labelled(d) for d in docs])
    seen = replace(seen, flux_owner=flux_owner(seen.manifest))
    plan = make_plan("prod", [desired("api", {"replicas": 2}, docs)], {"shop/api": seen})
    (release,) = plan.releases
    assert release.action == NOOP
    assert not plan.has_changes
    assert release.notes == ("managed by Flux (HelmRelease flux-system/api): change it through Flux",)


def test_only_those_two_labels_are_ignored_and_only_for_a_flux_owned_release() -> None:
    docs = [configmap("cfg", a="1")]
    other = observed("api", {}, [flux_labelled(docs[0], team="x")])
    owned = make_plan(
        "prod", [desired("api", {}, docs)], {"shop/api": replace(other, flux_owner="flux-system/api")}
    )
    (release,) = owned.releases
    assert release.action == UPGRADE
    (change,) = release.resources
    assert "-    team: x" in change.diff
    assert "helm.toolkit.fluxcd.io" not in change.diff
    not_owned = make_plan("prod", [desired("api", {}, docs)], {"shop/api": other})
    assert "helm.toolkit.fluxcd.io/name" in not_owned.releases[0].resources[0].diff
