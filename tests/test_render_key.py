"""The render cache keys values by canonical JSON, and falls back to the YAML helm reads wherever
JSON could make two different values files one key. Pure."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from deployer.render import values_key


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"n": 1}, {"n": 1.0}),
        ({"n": 1}, {"n": "1"}),
        ({"n": 1}, {"n": True}),
        ({"n": None}, {}),
        ({"l": [1, 2]}, {"l": [2, 1]}),
        ({"s": "y"}, {"s": True}),
    ],
)
def test_values_helm_reads_differently_have_different_keys(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert values_key(a) != values_key(b)


def test_key_order_does_not_matter() -> None:
    assert values_key({"a": 1, "b": {"c": 2, "d": 3}}) == values_key({"b": {"d": 3, "c": 2}, "a": 1})


@pytest.mark.parametrize(
    "values", [{1: "a"}, {"a": {True: "x"}}, {"d": datetime.date(2024, 1, 2)}, {"b": b"bytes"}]
)
def test_what_json_could_confuse_is_keyed_by_the_yaml_instead(values: dict[Any, Any]) -> None:
    assert values_key(values) is None
