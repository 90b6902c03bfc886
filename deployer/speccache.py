"""Check a spec with pydantic once, not on every run.

Importing pydantic and building deployer's models costs about 0.2 s of CPU, a third of a `diff` with
nothing to do at N=10. So when pydantic accepts a spec, deployer records that it did (a salted digest
of the spec's data and of the models' source: no data, nothing secret) and, the first time, a
description of the models (field names, aliases, defaults, which fields are models). The next run
with the same data builds the spec objects from that description without importing pydantic.

The rebuilt spec is pydantic's, exactly, or it is not used: the description path is taken only when
every value already has the exact type its field declares (so pydantic's lax mode coerced nothing:
a `"300"` given for an int field goes to pydantic), and the only field validator (`labels`, which
makes label values strings) is then the identity. Any doubt (a model with another validator, a type
the description does not know, a digest not recorded) falls back to pydantic, which also produces
every error message. Delete the cache directory at any time; it is rebuilt.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deployer.yamlsource import Deferred, VarRef

_MODEL_SOURCE = Path(__file__).with_name("model.py")
_IDENTITY_VALIDATORS = {("Release", "labels")}  # validators that leave exactly-typed input as it is
_IDENTITY_CHECKS = {"_api_version", "_parses"}  # AfterValidator functions that only check (model.py)


class SpecObject:
    """A spec model's fields as attributes (what deployer reads of pydantic's objects)."""

    def __init__(self, model: str, fields: Mapping[str, Any]) -> None:
        self.__dict__.update(fields)
        self._model = model

    def __repr__(self) -> str:
        return f"{self._model}({', '.join(f'{k}={v!r}' for k, v in vars(self).items() if k != '_model')})"


_PENDING: list[tuple[Any, Path]] = []


def load(data: Any, directory: Path | None) -> Any:
    """The validated spec of `data` (pydantic's ValidationError propagates). A spec pydantic
    validated is recorded by `flush`, once the command that read it has succeeded: bad input leaves
    nothing in deployer's cache."""
    if directory is not None and (directory / "salt").exists():
        description = _read_json(directory / f"models-{_fingerprint()}.json")
        try:
            known = description is not None and (directory / _key(data, directory)).exists()
        except (OSError, TypeError, ValueError):
            known = False
        if known:
            built = _build(description, "Spec", data)
            if built is not _NO:
                return built
    from deployer.model import Spec

    spec = Spec.model_validate(data)
    if directory is not None:
        _PENDING.append((data, directory))
    return spec


def flush(*, record: bool = True) -> None:
    """Record the specs pydantic validated in this run (deployer.main, after a success), or forget
    them (after a failure)."""
    while _PENDING:
        data, directory = _PENDING.pop()
        if not record:
            continue
        try:
            key = _key(data, directory)
            models = directory / f"models-{_fingerprint()}.json"
            if not models.exists():
                _write(models, json.dumps(describe(), sort_keys=True))
            _write(directory / key, "")
        except (OSError, TypeError, ValueError):
            pass  # a cache that cannot be written costs only time


def new(directory: Path | None, model: str) -> Any:
    """An instance of a spec model with every default (an environment declared as `name: {}`)."""
    description = _read_json(directory / f"models-{_fingerprint()}.json") if directory else None
    if description is not None:
        built = _build(description, model, {})
        if built is not _NO:
            return built
    from deployer import model as models

    return getattr(models, model)()


_FINGERPRINT: list[str] = []


def _fingerprint() -> str:
    if not _FINGERPRINT:
        _FINGERPRINT.append(hashlib.sha256(_MODEL_SOURCE.read_bytes()).hexdigest()[:16])
    return _FINGERPRINT[0]


def _key(data: Any, directory: Path) -> str:
    material = json.dumps([_fingerprint(), data], sort_keys=True, separators=(",", ":"), default=_encode)
    return "spec-" + hmac.new(_salt(directory), material.encode(), hashlib.sha256).hexdigest()


def _encode(value: Any) -> Any:
    if isinstance(value, VarRef):
        return ["!var", value.text]
    if isinstance(value, Deferred):
        return ["!deferred", value.node.tag, value.node.value, value.node.style]
    raise TypeError(type(value).__name__)


def _salt(directory: Path) -> bytes:
    path = directory / "salt"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write(path, secrets.token_hex(32))
        return path.read_bytes()


def _write(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(partial, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class _No:
    pass


_NO: Any = _No()


def _build(description: Mapping[str, Any], model: str, data: Any) -> Any:
    spec = description.get(model)
    if spec is None or not isinstance(data, dict):
        return _NO
    fields = spec["fields"]
    names = {f["alias"]: f for f in fields} | {f["name"]: f for f in fields}
    if any(k not in names for k in data):
        return _NO
    out: dict[str, Any] = {}
    for field in fields:
        if field["alias"] in data:
            value = data[field["alias"]]
        elif field["name"] in data:
            value = data[field["name"]]
        elif field["default"] == "required":
            return _NO
        else:
            out[field["name"]] = _default(description, field)
            continue
        built = _value(description, field["type"], value)
        if built is _NO:
            return _NO
        out[field["name"]] = built
    return SpecObject(model, out)


def _default(description: Mapping[str, Any], field: Mapping[str, Any]) -> Any:
    kind = field["default"]
    if kind == "model":
        return _build(description, field["type"][1], {})
    if kind == "list":
        return []
    if kind == "dict":
        return {}
    return field["value"]


def _value(description: Mapping[str, Any], kind: Any, value: Any) -> Any:
    """`value` as pydantic gives it back for this type, when that is `value` itself; else _NO."""
    tag = kind[0]
    if tag == "union":
        for option in kind[1]:
            built = _value(description, option, value)
            if built is not _NO:
                return built
        return _NO
    if tag == "none":
        return None if value is None else _NO
    if tag == "model":
        return _build(description, kind[1], value)
    if tag == "list":
        if not isinstance(value, list):
            return _NO
        items = [_value(description, kind[1], v) for v in value]
        return _NO if any(i is _NO for i in items) else items
    if tag == "dict":
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            return _NO
        mapping = {k: _value(description, kind[1], v) for k, v in value.items()}
        return _NO if any(i is _NO for i in mapping.values()) else mapping
    if tag == "any":
        return value
    if tag == "literal":
        return value if type(value) is str and value in kind[1] else _NO
    exact = {"str": str, "int": int, "bool": bool}[tag]
    return value if type(value) is exact else _NO


def describe() -> dict[str, Any]:
    """Every model reachable from Spec: its fields, aliases, defaults and types; a model with a
    validator the description cannot reproduce is left out (so any spec using it goes to pydantic)."""
    from deployer.model import Spec

    out: dict[str, Any] = {}

    def model(cls: Any) -> None:
        name = cls.__name__
        if name in out:
            return
        out[name] = None  # being described
        validated = {
            field
            for dec in cls.__pydantic_decorators__.field_validators.values()
            for field in dec.info.fields
        }
        if any((name, f) not in _IDENTITY_VALIDATORS for f in validated):
            del out[name]
            return
        fields = []
        for field_name, info in cls.model_fields.items():
            kind = _type(info.annotation, model)
            if kind is None:
                del out[name]
                return
            entry: dict[str, Any] = {"name": field_name, "alias": info.alias or field_name, "type": kind}
            if info.default_factory is not None:
                made = info.default_factory()
                entry["default"] = (
                    "list" if isinstance(made, list) else "dict" if isinstance(made, dict) else "model"
                )
            elif info.is_required():
                entry["default"] = "required"
            else:
                entry["default"], entry["value"] = "value", info.default
            fields.append(entry)
        out[name] = {"fields": fields}

    model(Spec)
    return {k: v for k, v in out.items() if v is not None}


def _type(annotation: Any, model: Any) -> Any:
    import types
    import typing

    from pydantic import BaseModel

    origin = typing.get_origin(annotation)
    if annotation is typing.Any:
        return ["any"]
    if annotation is type(None):
        return ["none"]
    if annotation in (str, int, bool):
        return [annotation.__name__]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        model(annotation)
        return ["model", annotation.__name__]
    if origin is typing.Annotated:  # a format check that returns what it was given, or nothing known
        inner, *meta = typing.get_args(annotation)
        # constraints (min_length, ...) held when pydantic accepted this data and change nothing;
        # a validator function may, unless it is one that only checks
        checks = all(
            getattr(m, "func", None) is None or getattr(m.func, "__name__", "") in _IDENTITY_CHECKS
            for m in meta
        )
        return _type(inner, model) if checks else None
    if origin is typing.Literal:
        values = typing.get_args(annotation)
        return ["literal", list(values)] if all(type(v) is str for v in values) else None
    if origin in (typing.Union, types.UnionType):
        options = [_type(a, model) for a in typing.get_args(annotation)]
        return None if any(o is None for o in options) else ["union", options]
    if origin is list:
        (item,) = typing.get_args(annotation)
        inner = _type(item, model)
        return None if inner is None else ["list", inner]
    if origin is dict:
        key, item = typing.get_args(annotation)
        inner = _type(item, model)
        return None if key is not str or inner is None else ["dict", inner]
    return None
