from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from deployer.graph import batches, find_cycle, topological_order


def test_cycle_is_reported_as_a_closed_path() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["a"]}) == ["a", "a"]
    assert find_cycle({"a": ["b"], "b": []}) is None


def test_order_puts_needs_first_and_breaks_ties_by_name() -> None:
    needs = {"shop/worker": ["shop/api", "shop/config"], "shop/api": ["shop/config"], "shop/config": []}
    assert topological_order(needs, needs) == ["shop/config", "shop/api", "shop/worker"]
    assert topological_order(["c", "b", "a"], {}) == ["a", "b", "c"]


def test_needs_outside_the_selection_do_not_block() -> None:
    assert topological_order(["api"], {"api": ["db"]}) == ["api"]


def test_batches_group_independent_releases() -> None:
    needs = {"api": ["db"], "web": ["db"], "db": [], "cron": []}
    assert batches(needs, needs) == [["cron", "db"], ["api", "web"]]


names = st.sampled_from([f"r{i}" for i in range(8)])


@given(st.dictionaries(names, st.lists(names, max_size=3), max_size=8))
def test_every_acyclic_graph_orders_each_node_after_its_needs(graph: dict[str, list[str]]) -> None:
    # Keep only edges to lower-numbered nodes: acyclic by construction.
    dag = {n: [d for d in deps if d < n] for n, deps in graph.items()}
    order = topological_order(dag, dag)
    assert sorted(order) == sorted(dag)
    for node, deps in dag.items():
        for dep in deps:
            if dep in dag:
                assert order.index(dep) < order.index(node)
    assert order == topological_order(reversed(list(dag)), dag)  # input order never matters
