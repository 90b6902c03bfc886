"""Variables for values: declared per environment (and in `defaults`), referenced in values with the
YAML tag `!var`. A substitution, not a language: no conditionals, loops or functions.

    defaults:
      vars: {domain: example.com}
    environments:
      prod:
        vars:
          domain: shop.example.com
          dbPassword: {value: "${DB_PASSWORD}", sensitive: true}   # ${...}: the process environment
    # any values file, overlay or inline values:
    ingress:
      host: !var "api.${domain}"     # a text: each ${name} is replaced by the variable's value
      replicas: !var replicas        # a bare name: the variable's value with its type (map, list, ...)
      password: !var dbPassword      # sensitive: masked wherever it is shown

Why a tag: only a value the author tagged is ever touched, so the `${...}` and `{{ }}` that charts'
own values legitimately contain are never rewritten, in any file. `$${` inside a `!var` text is a
literal `${`. A variable's value may itself come from the environment (`${VAR}` in deployer.yaml is
interpolated when the spec is read); it cannot reference another variable.

Every substituted value keeps its provenance: `values --explain` names where it was written and
where the variable was declared.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deployer.errors import SpecError
from deployer.interpolation import Interpolator
from deployer.merge import Layer, Origin, ValuePath
from deployer.yamlsource import Deferred, VarRef

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")
_TEXT = re.compile(r"\$\$\{|\$\{([^}]*)\}")


@dataclass(frozen=True)
class Var:
    value: Any
    origin: str  # where it was declared: file:line:column
    sensitive: bool = False


def declared(project: Any, env_name: str) -> dict[str, Var]:
    """The environment's variables: `defaults.vars`, then `environments.<env>.vars` (a name declared
    in both takes the environment's value as a whole)."""
    out: dict[str, Var] = {}
    env = project.environment(env_name)
    interpolate = Interpolator(project.environ)
    sources = [
        (project.spec.defaults.vars, ("defaults", "vars")),
        (env.vars, ("environments", env_name, "vars")),
    ]
    for table, at in sources:
        for name, raw in (table or {}).items():
            value, sensitive = raw, False
            if isinstance(raw, Mapping) and set(raw) <= {"value", "sensitive"} and "value" in raw:
                value, sensitive = raw["value"], bool(raw.get("sensitive", False))
            out[name] = Var(_interpolated(value, interpolate), str(project.doc.mark((*at, name))), sensitive)
    return out


def _interpolated(value: Any, interpolate: Interpolator) -> Any:
    """`${VAR}` in a variable's value, from the process environment, now that it is used."""
    if isinstance(value, Deferred):
        return value.resolve(interpolate)
    if isinstance(value, Mapping):
        return {k: _interpolated(v, interpolate) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolated(v, interpolate) for v in value]
    return value


def check_declarations(project: Any) -> list[SpecError]:
    """Names that cannot be referenced, and variables whose value references another variable."""
    errors = []
    tables = [(project.spec.defaults.vars, ("defaults", "vars"))] + [
        (env.vars, ("environments", name, "vars")) for name, env in project.spec.environments.items() if env
    ]
    for table, at in tables:
        for name, raw in (table or {}).items():
            mark = project.doc.mark((*at, name), key=True)
            if "." in name or not _NAME.match(name):
                errors.append(
                    SpecError(
                        f"invalid variable name '{name}'",
                        mark=mark,
                        hint="use letters, digits, '_' and '-', starting with a letter or '_'",
                    )
                )
            if _holds_ref(raw):
                errors.append(
                    SpecError(
                        f"variable '{name}' references another variable",
                        mark=project.doc.mark((*at, name)),
                        hint="write its value in full: variables are substituted into values, not into "
                        "each other",
                    )
                )
    return errors


def _holds_ref(value: Any) -> bool:
    if isinstance(value, VarRef):
        return True
    if isinstance(value, Mapping):
        return any(_holds_ref(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_ref(v) for v in value)
    return False


@dataclass
class _Substitution:
    variables: Mapping[str, Var]
    env_name: str
    origins: dict[ValuePath, Origin]
    sensitive: set[str]

    def walk(self, node: Any, path: ValuePath) -> Any:
        if isinstance(node, VarRef):
            return self.ref(node, path)
        if isinstance(node, Mapping):
            return {k: self.walk(v, (*path, str(k))) for k, v in node.items()}
        if isinstance(node, list):
            return [self.walk(v, path) for v in node]
        return node

    def ref(self, ref: VarRef, path: ValuePath) -> Any:
        if "${" in ref.text:
            used: list[Var] = []

            def one(match: re.Match[str]) -> str:
                if match.group(0) == "$${":
                    return "${"
                var = self.lookup(match.group(1).strip(), ref)
                if isinstance(var.value, (Mapping, list)):
                    raise SpecError(
                        f"variable '{match.group(1).strip()}' holds a "
                        f"{'map' if isinstance(var.value, Mapping) else 'list'}, which cannot go into a text",
                        mark=ref.mark,
                        hint=f"reference it alone: !var {match.group(1).strip()}",
                    )
                used.append(var)
                return _text(var.value)

            value: Any = _TEXT.sub(one, ref.text)
            names = ", ".join(f"{n} from {v.origin}" for n, v in zip(_names(ref.text), used, strict=False))
            self.mark_path(path, ref, f"vars {names}" if len(used) > 1 else f"var {names}", used, value)
            return value
        name = ref.text.strip()
        var = self.lookup(name, ref)
        self.mark_path(path, ref, f"var {name} from {var.origin}", [var], var.value)
        return var.value

    def mark_path(self, path: ValuePath, ref: VarRef, via: str, used: list[Var], value: Any) -> None:
        origin = Origin(f"{ref.mark} ({via})")
        self.origins[path] = origin
        secret = any(v.sensitive for v in used)
        if secret:
            self.sensitive.add(".".join(path))
        for sub in _subpaths(value, path):
            self.origins[sub] = origin
            if secret:
                self.sensitive.add(".".join(sub))

    def lookup(self, name: str, ref: VarRef) -> Var:
        head, _, rest = name.partition(".")
        if not _NAME.match(name):
            raise SpecError(
                f"invalid !var reference '{ref.text}'",
                mark=ref.mark,
                hint='write !var NAME (the value, with its type) or !var "text ${NAME} text"',
            )
        var = self.variables.get(head)
        if var is None:
            known = sorted(self.variables)
            close = difflib.get_close_matches(head, known, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise SpecError(
                f"unknown variable '{head}' in environment '{self.env_name}'",
                mark=ref.mark,
                hint=hint
                + f"declare it under environments.{self.env_name}.vars or defaults.vars"
                + (f" (known: {', '.join(known)})" if known and not close else ""),
            )
        value = var.value
        for key in rest.split(".") if rest else []:
            if not isinstance(value, Mapping) or key not in value:
                raise SpecError(
                    f"variable '{head}' has no key '{rest}' (declared at {var.origin})",
                    mark=ref.mark,
                    hint=f"its keys: {', '.join(sorted(map(str, value)))}"
                    if isinstance(value, Mapping)
                    else f"'{head}' is not a map",
                )
            value = value[key]
        return Var(value, var.origin, var.sensitive)


def _names(text: str) -> list[str]:
    return [m.group(1).strip() for m in _TEXT.finditer(text) if m.group(0) != "$${"]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _subpaths(value: Any, path: ValuePath) -> list[ValuePath]:
    if not isinstance(value, Mapping):
        return []
    out = []
    for key, item in value.items():
        sub = (*path, str(key))
        out.append(sub)
        out.extend(_subpaths(item, sub))
    return out


def substitute(layer: Layer, variables: Mapping[str, Var], env_name: str) -> tuple[Layer, set[str]]:
    """The layer with every `!var` replaced, its origins naming the variables used, and the dotted
    paths that took a sensitive variable. Raises SpecError for an unknown variable."""
    if not _holds_ref(layer.values):
        return layer, set()
    job = _Substitution(variables, env_name, dict(layer.origins), set())
    values = job.walk(layer.values, ())
    return Layer(values=values, origins=job.origins, replace=layer.replace), job.sensitive
