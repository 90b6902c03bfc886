"""The `needs` graph: cycle detection and a stable dependency order. Pure."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence


def find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """One cycle as a path that ends where it starts (a -> b -> a), or None. Deterministic."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def topological_order(nodes: Iterable[str], needs: Mapping[str, Sequence[str]]) -> list[str]:
    """Every node after what it needs; ties broken by name so the order never flickers.

    Needs that point outside `nodes` (a release not selected) do not constrain the order.
    """
    members = set(nodes)
    indegree = {n: 0 for n in members}
    dependents: dict[str, list[str]] = {n: [] for n in members}
    for node in members:
        for dep in set(needs.get(node, ())):
            if dep in members:
                indegree[node] += 1
                dependents[dep].append(node)
    ready = [n for n, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for nxt in dependents[node]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                heapq.heappush(ready, nxt)
    if len(order) != len(members):
        raise ValueError("needs graph has a cycle")  # callers validate first; this is a bug guard
    return order


def batches(nodes: Iterable[str], needs: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Levels for display: each batch needs only earlier batches. Sorted within a batch."""
    order = topological_order(nodes, needs)
    members = set(order)
    level: dict[str, int] = {}
    for node in order:
        deps = [level[d] for d in needs.get(node, ()) if d in members]
        level[node] = 1 + max(deps) if deps else 0
    out: list[list[str]] = [[] for _ in range(1 + max(level.values(), default=-1))]
    for node in order:
        out[level[node]].append(node)
    return [sorted(b) for b in out]
