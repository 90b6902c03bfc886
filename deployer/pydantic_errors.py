"""Turn pydantic validation errors into spec errors at the right file:line:column."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError

from deployer.errors import SpecError
from deployer.yamlsource import Document, PathKey


def spec_errors(exc: ValidationError, doc: Document, root: type[BaseModel]) -> list[SpecError]:
    seen: set[tuple[PathKey, str]] = set()
    errors: list[SpecError] = []
    for err in exc.errors():
        path = _data_path(err["loc"], doc.data)
        kind = err["type"]
        if (path, kind) in seen:
            continue
        seen.add((path, kind))
        errors.append(_one(err, path, doc, root))
    return errors


def _data_path(loc: tuple[int | str, ...], data: Any) -> PathKey:
    """pydantic's loc reduced to the parts that exist in the data.

    This drops the union-member names pydantic inserts (e.g. 'str') and, for a missing key, stops
    at its parent mapping, which is where the error belongs.
    """
    path: list[str | int] = []
    node = data
    for part in loc:
        in_map = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_map or in_list:
            node = node[part]
            path.append(part)
    return tuple(path)


def _where(path: PathKey, data: Any) -> str:
    """'release api', 'repository example', or the dotted path."""
    if len(path) >= 2 and path[0] in ("releases", "repositories") and isinstance(path[1], int):
        items = data.get(path[0]) if isinstance(data, dict) else None
        item = items[path[1]] if isinstance(items, list) and path[1] < len(items) else None
        name = item.get("name") if isinstance(item, dict) else None
        kind = "release" if path[0] == "releases" else "repository"
        return f"{kind} '{name}'" if name else f"{path[0]}[{path[1]}]"
    return ".".join(str(p) for p in path) or "the spec's top level"


def _allowed_keys(root: type[BaseModel], path: PathKey) -> list[str]:
    """The keys the model accepts at `path` (for 'did you mean')."""
    annotation: Any = root
    for part in path:
        model = _model_of(annotation)
        if model is not None and isinstance(part, str):
            field = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
            if field is None:
                return []
            annotation = field.annotation
        else:  # a list index or a dict key: step into the item type
            args = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
            annotation = args[-1] if args else None
            if getattr(annotation, "__origin__", None) in (dict, list):
                annotation = annotation.__args__[-1]
    model = _model_of(annotation)
    return sorted(f.alias or n for n, f in model.model_fields.items()) if model is not None else []


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if getattr(annotation, "__origin__", None) in (dict, list):
        return None
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


_EXPECTED = {
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "greater_than_equal": "a number of at least {ge}",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "dict_type": "a mapping (key: value)",
    "list_type": "a list",
    "string_type": "a string",
    "model_type": "a mapping (key: value)",
    "literal_error": "one of {expected}",
}


def _one(err: Any, path: PathKey, doc: Document, root: type[BaseModel]) -> SpecError:
    kind = err["type"]
    where = _where(path, doc.data)
    if kind == "extra_forbidden":
        key = str(path[-1])
        allowed = _allowed_keys(root, path[:-1])
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else f"allowed keys: {', '.join(allowed)}"
        owner = _where(path[:-1], doc.data)
        return SpecError(f"unknown key '{key}' in {owner}", mark=doc.mark(path, key=True), hint=hint)
    if kind == "missing":
        key = str(err["loc"][-1])
        return SpecError(
            f"{where} is missing required key '{key}'", mark=doc.mark(path), hint=f"add '{key}: ...'"
        )
    if kind == "value_error":  # a validator's own message (deployer.model), which says how to fix it
        reason = str((err.get("ctx") or {}).get("error") or err["msg"])
        return SpecError(f"{where}: {reason}", mark=doc.mark(path), hint="")
    expected = _EXPECTED.get(kind, err["msg"]).format(**(err.get("ctx") or {}))
    named = bool(path) and isinstance(path[-1], str) and not where.endswith(str(path[-1]))
    key = f" '{path[-1]}'" if named else ""
    got = err.get("input")
    shown = f"{got!r}" if isinstance(got, str | int | float | bool) else type(got).__name__
    return SpecError(
        f"{where}:{key} must be {expected}, not {shown}"
        if key
        else f"{where} must be {expected}, not {shown}",
        mark=doc.mark(path),
        hint=f"write{key or ' it'} as {expected}",
    )
