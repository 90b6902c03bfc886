"""Helm's values merge, with provenance.

Semantics (helm's `mergeMaps` for -f files, then chart defaults): maps merge recursively, lists and
scalars replace, and an explicit `null` replaces too and is kept, so that it reaches helm and removes
the chart default. Every path remembers which source set it and which lower sources it overrode.
Pure: data in, data out.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

ValuePath = tuple[str, ...]


@dataclass(frozen=True)
class Origin:
    """Where a value came from: a file position, or a command-line flag."""

    source: str  # "values/api.yaml:3:5", "--set replicaCount=3"

    def __str__(self) -> str:
        return self.source


@dataclass(frozen=True)
class Overridden:
    origin: Origin
    path: ValuePath
    value: Any


@dataclass
class Merged:
    """Merged values plus, for every path, its origin and what it replaced."""

    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[ValuePath, Origin] = field(default_factory=dict)
    overridden: dict[ValuePath, list[Overridden]] = field(default_factory=dict)


@dataclass(frozen=True)
class Layer:
    """One source of values: its data and the origin of each of its paths."""

    values: Mapping[str, Any]
    origins: Mapping[ValuePath, Origin]
    # Paths whose map replaces the map below instead of merging into it (`--set-json a={...}`).
    replace: frozenset[ValuePath] = frozenset()


def merge_layers(layers: list[Layer]) -> Merged:
    result = Merged()
    for layer in layers:
        _merge_into(result, result.values, layer.values, layer, ())
    return result


def merge_values(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """The plain merge, without provenance (for properties and callers that need no explanation)."""
    out = dict(base)
    for key, value in overlay.items():
        current = out.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            out[key] = merge_values(current, value)
        else:
            out[key] = _copy(value)
    return out


def _merge_into(
    result: Merged,
    target: dict[str, Any],
    overlay: Mapping[str, Any],
    layer: Layer,
    prefix: ValuePath,
) -> None:
    for key, value in overlay.items():
        path = (*prefix, key)
        current = target.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping) and path not in layer.replace:
            _merge_into(result, current, value, layer, path)
            continue
        if key in target:
            replaced = [
                Overridden(result.origins[p], p, v) for p, v in _leaves(current, path) if p in result.origins
            ]
            result.overridden.setdefault(path, []).extend(replaced)
            for stale in [p for p in result.origins if p[: len(path)] == path]:
                del result.origins[stale]
        target[key] = _copy(value)
        for sub_path, _ in _nodes(value, path):
            if sub_path in layer.origins:
                result.origins[sub_path] = layer.origins[sub_path]


def leaves(values: Mapping[str, Any]) -> Iterator[tuple[ValuePath, Any]]:
    """Every leaf (scalar, list, null or empty map) with its path, in sorted key order."""
    for key in sorted(values):
        yield from _leaves(values[key], (key,))


def _leaves(value: Any, path: ValuePath) -> Iterator[tuple[ValuePath, Any]]:
    if isinstance(value, Mapping) and value:
        for key in sorted(value):
            yield from _leaves(value[key], (*path, key))
    else:
        yield path, value


def _nodes(value: Any, path: ValuePath) -> Iterator[tuple[ValuePath, Any]]:
    yield path, value
    if isinstance(value, Mapping):
        for key, sub in value.items():
            yield from _nodes(sub, (*path, key))


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
