"""Masking of values paths the spec marks `sensitive`. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MASK = "<sensitive>"


def mask_values(values: Mapping[str, Any], sensitive: Iterable[str]) -> dict[str, Any]:
    """A copy of `values` with every sensitive dotted path (and everything below it) masked."""
    out: dict[str, Any] = _copy(values)
    for dotted in sensitive:
        parts = dotted.split(".")
        node: Any = out
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and parts[-1] in node and node[parts[-1]] is not None:
            node[parts[-1]] = MASK
    return out


def is_sensitive(path: tuple[str, ...], sensitive: Iterable[str]) -> bool:
    dotted = ".".join(path)
    return any(dotted == s or dotted.startswith(s + ".") for s in sensitive)


def _copy(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, Mapping) else v for k, v in values.items()}
