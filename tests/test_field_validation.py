"""Which API servers validate fields themselves, so that helm's client-side check can be skipped."""

from __future__ import annotations

import pytest

from deployer.kube import validates_fields


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("v1.35.4", True),
        ("v1.27.0", True),
        ("v1.30.2-gke.1045000", True),
        ("v1.28.15-eks-7f9249a", True),
        ("v2.0.0", True),
        ("v1.26.15", False),  # fieldValidation was beta then: helm keeps its own check
        ("v1.9.11", False),
        ("", False),
        ("unknown", False),
    ],
)
def test_only_servers_that_validate_fields_themselves_skip_helms_check(version: str, expected: bool) -> None:
    assert validates_fields(version) is expected
