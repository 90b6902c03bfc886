"""Which existing objects helm adopts on install or upgrade (deployer/ownership.py mirrors helm's
checkOwnership; tests/cluster/test_diff.py checks the notes against a real refusal)."""

from __future__ import annotations

from typing import Any

import pytest

from deployer.ownership import refusal


def obj(labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "x", "labels": labels or {}, "annotations": annotations or {}}}


HELM = {"app.kubernetes.io/managed-by": "Helm"}


def names(release: str, namespace: str) -> dict[str, str]:
    return {"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": namespace}


def test_an_object_labelled_and_annotated_for_this_release_is_adopted() -> None:
    assert refusal(obj(HELM, names("api", "shop")), "api", "shop") is None


@pytest.mark.parametrize(
    ("live", "why"),
    [
        (obj(HELM, names("other", "shop")), "belongs to release shop/other"),
        (obj(HELM, names("api", "books")), "belongs to release books/api"),
        (obj({}, {}), "is not owned by any helm release"),
        (obj({}, names("api", "shop")), "is not owned by any helm release"),  # the label is missing
        (obj(HELM, {"meta.helm.sh/release-name": "api"}), "belongs to release api"),  # no namespace
        ({"metadata": {"name": "x"}}, "is not owned by any helm release"),
    ],
)
def test_anything_else_is_refused_and_says_who_holds_it(live: dict[str, Any], why: str) -> None:
    assert refusal(live, "api", "shop") == why
