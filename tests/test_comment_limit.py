"""The pull-request comment is always shorter than its limit, whatever the plan, and says what it
cut: properties (hypothesis) and the big plans of issue 9."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deployer.manifests import ResourceChange, ResourceKey
from deployer.plan import (
    BLOCKED,
    INSTALL,
    NOOP,
    PRUNE,
    UPGRADE,
    Action,
    Plan,
    ReleasePlan,
    ValueChange,
    apply_order,
)
from deployer.report import CUT, markdown

LIMITS = (2_000, 10_000, 65_000)


def diff(name: str, lines: int, width: int = 40) -> str:
    body = "".join(f"-  KEY_{i:05d}: {'a' * width}\n+  KEY_{i:05d}: {'b' * width}\n" for i in range(lines))
    return f"--- before: ConfigMap shop/{name}\n+++ after: ConfigMap shop/{name}\n@@ -1 +1 @@\n{body}"


def release(
    i: int, action: str, *, reason: int, values: int, value_size: int, drift: int, resources: int
) -> ReleasePlan:
    name = f"app-{i:05d}"
    return ReleasePlan(
        key=f"shop/{name}",
        name=name,
        namespace="shop",
        action=Action(action),
        reasons=(f"{values} value(s) changed", "because " + "r" * reason),
        chart="web",
        version_before="1.0.0",
        version_after="1.1.0",
        revision=3,
        needs=(f"shop/app-{i - 1:05d}",) if i % 3 else (),
        values=tuple(
            ValueChange(
                f"config.key{j}", "changed", "x" * value_size, "y" * value_size, "values/app.yaml:3:5"
            )
            for j in range(values)
        ),
        resources=tuple(
            ResourceChange(
                ResourceKey("", "ConfigMap", "shop", f"{name}-{j}"), "changed", diff(name, resources)
            )
            for j in range(2 if resources else 0)
        ),
        drift=(ResourceChange(ResourceKey("", "ConfigMap", "shop", name), "drifted", diff(name, drift)),)
        if drift
        else (),
    )


def big_plan(
    *,
    releases: int,
    reason: int = 20,
    values: int = 2,
    value_size: int = 10,
    drift: int = 0,
    resources: int = 3,
    notes: int = 1,
    seed: int = 0,
) -> Plan:
    """A plan of `releases` releases whose sizes vary (randomly, from `seed`) up to the given ones."""
    rng = random.Random(seed)
    plans = tuple(
        release(
            i,
            rng.choice([UPGRADE, UPGRADE, INSTALL, NOOP, PRUNE, BLOCKED]),
            reason=rng.randint(0, reason),
            values=rng.randint(0, values),
            value_size=rng.randint(1, value_size),
            drift=rng.randint(0, drift),
            resources=rng.randint(0, resources),
        )
        for i in range(releases)
    )
    return Plan(
        environment="prod",
        releases=plans,
        order=apply_order(plans),
        notes=tuple(f"note {n}: " + "n" * rng.randint(0, 400) for n in range(notes)),
    )


def check(plan: Plan, limit: int) -> str:
    full = markdown(plan, limit=10**9)
    out = markdown(plan, limit)
    assert len(out) < limit
    assert out.count("<details>") == out.count("</details>")
    assert sum(1 for line in out.splitlines() if line.startswith("```")) % 2 == 0  # fences closed
    if len(full) < limit:
        assert out == full
        assert CUT not in out
    else:
        assert CUT in out
        assert "run `deployer diff` locally for the full plan" in out
    return out


# Enough to overflow the largest limit many times over (~2 MB of diff), small enough to be quick.
MAX_DIFF_LINES = 20_000
MAX_VALUE_CHARS = 1_000_000
MAX_VALUE_ROWS = 20_000


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    releases = draw(st.integers(0, 2_500))
    per_release = max(1, releases)
    values = draw(st.integers(0, min(300, MAX_VALUE_ROWS // per_release)))
    return big_plan(
        releases=releases,
        reason=draw(st.integers(0, 2_000)),
        values=values,
        value_size=draw(st.integers(1, max(1, MAX_VALUE_CHARS // per_release // max(1, values)))),
        drift=draw(st.integers(0, MAX_DIFF_LINES // per_release)),
        resources=draw(st.integers(0, MAX_DIFF_LINES // per_release)),
        notes=draw(st.integers(0, 300)),
        seed=draw(st.integers(0, 2**16)),
    )


@settings(max_examples=30)
@given(plan=plans(), limit=st.sampled_from(LIMITS))
def test_the_comment_is_always_shorter_than_its_limit_and_says_what_it_cut(plan: Plan, limit: int) -> None:
    check(plan, limit)


@given(releases=st.integers(0, 3), limit=st.integers(1, 3_000))
def test_any_limit_holds_even_one_too_small_for_the_summary(releases: int, limit: int) -> None:
    assert len(markdown(big_plan(releases=releases, values=50, value_size=100), limit)) < limit


def one(**sizes: int) -> Plan:
    plans = (
        release(
            0, UPGRADE, **{"reason": 10, "values": 0, "value_size": 1, "drift": 0, "resources": 0, **sizes}
        ),
    )
    return Plan(environment="prod", releases=plans, order=apply_order(plans))


@pytest.mark.parametrize("limit", LIMITS)
def test_two_thousand_releases_with_long_reasons(limit: int) -> None:
    out = check(big_plan(releases=2_000, reason=500, values=0), limit)
    assert "release(s) not listed in this table" in out
    assert "release section(s) not shown" in out


@pytest.mark.parametrize("limit", LIMITS)
def test_a_huge_values_table(limit: int) -> None:
    out = check(one(values=5_000, value_size=40), limit)
    assert "more value(s) not shown" in out


@pytest.mark.parametrize("limit", LIMITS)
def test_a_huge_drift(limit: int) -> None:
    out = check(one(drift=10_000), limit)
    assert "Drift truncated" in out


@pytest.mark.parametrize("limit", LIMITS)
def test_a_huge_value(limit: int) -> None:
    out = check(one(values=3, value_size=100_000), limit)
    assert "…" in out


@pytest.mark.parametrize("limit", LIMITS)
def test_a_long_apply_order_and_many_notes(limit: int) -> None:
    plan = big_plan(releases=3_000, values=0, resources=0, notes=2_000)
    out = check(plan, limit)
    assert "more batch(es) not shown" in out
    assert "more note(s) not shown" in out


def test_a_plan_that_fits_is_not_cut() -> None:
    plan = big_plan(releases=5)
    assert CUT not in check(plan, 65_000)
