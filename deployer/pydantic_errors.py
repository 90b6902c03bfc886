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
    """'release api', 'repository example', or the dotted path; a hook's is followed by ', hooks[N]'."""
    hook = _hook_at(path)
    if hook:
        owner = _where(path[: hook - 2], data) if hook > 2 else "defaults"
        return f"{owner}, hooks[{path[hook - 1]}]"
    if len(path) >= 2 and path[0] in ("releases", "repositories") and isinstance(path[1], int):
        items = data.get(path[0]) if isinstance(data, dict) else None
        item = items[path[1]] if isinstance(items, list) and path[1] < len(items) else None
        name = item.get("name") if isinstance(item, dict) else None
        kind = "release" if path[0] == "releases" else "repository"
        return f"{kind} '{name}'" if name else f"{path[0]}[{path[1]}]"
    return ".".join(str(p) for p in path) or "the spec's top level"


def _hook_at(path: PathKey) -> int:
    """How many parts of `path` name one hook (`releases.0.hooks.1`: 4; `defaults.hooks.0`: 3), or 0."""
    for start in (("defaults",), ("releases", 0)):
        n = len(start)
        if len(path) > n + 1 and path[0] == start[0] and path[n] == "hooks" and isinstance(path[n + 1], int):
            return n + 2
    return 0


def _hook_field(path: PathKey) -> str:
    """A field inside a hook as the user wrote it: `command`, `events[1]`."""
    rest = path[_hook_at(path) :]
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(rest))


HOOK_HINTS = {
    "command": "write command: [program, arg, ...] (argv, run without a shell; [sh, -c, '...'] for one)",
    "events": "write events: [presync] (any of preapply, presync, postsync, preuninstall, postuninstall, "
    "cleanup)",
}


PREPARE_HINT = (
    "deployer runs no command while it reads or plans (a plan of a pull request would run the pull "
    "request's commands): commit what a prepare step generates, or run it in CI before deployer"
)


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
    "too_short": "a list of at least {min_length} item(s)",
    "string_too_short": "a non-empty string",
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
    if _hook_at(path) and len(path) > _hook_at(path):
        top = str(path[_hook_at(path)])
        hint = PREPARE_HINT if got == "prepare" else HOOK_HINTS.get(top, f"write {top} as {expected}")
        shown = "[]" if got == [] else shown
        return SpecError(
            f"{_where(path, doc.data)}: {_hook_field(path)} must be {expected}, not {shown}",
            mark=doc.mark(path),
            hint=hint,
        )
    return SpecError(
        f"{where}:{key} must be {expected}, not {shown}"
        if key
        else f"{where} must be {expected}, not {shown}",
        mark=doc.mark(path),
        hint=f"write{key or ' it'} as {expected}",
    )
