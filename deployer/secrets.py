"""Masking of values paths the spec marks `sensitive`. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MASK = "<sensitive>"
# Texts YAML reads as a boolean or null: never a secret, whatever the key (and everywhere in output).
YAML_BOOL_OR_NULL = frozenset({"true", "false", "yes", "no", "on", "off", "null", "~"})


def mask_values(values: Mapping[str, Any], sensitive: Iterable[str]) -> dict[str, Any]:
    """A copy of `values` with every sensitive dotted path (and everything below it) masked.

    Paths are matched as is_sensitive matches them (a key with a dot in it included), so what the
    values table masks and what `deployer values` masks never differ.
    """
    paths = tuple(sensitive)
    return _masked(values, (), paths) if paths else _copy(values)


def _masked(values: Mapping[str, Any], prefix: tuple[str, ...], sensitive: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        path = (*prefix, str(key))
        if value is not None and is_sensitive(path, sensitive):
            out[key] = MASK
        elif isinstance(value, Mapping):
            out[key] = _masked(value, path, sensitive)
        else:
            out[key] = value
    return out


def is_sensitive(path: tuple[str, ...], sensitive: Iterable[str]) -> bool:
    dotted = ".".join(path)
    return any(dotted == s or dotted.startswith(s + ".") for s in sensitive)


def _copy(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, Mapping) else v for k, v in values.items()}
