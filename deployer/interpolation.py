"""`${VAR}`, `${VAR:-default}`, `${VAR:?message}` from the environment; `$${` is a literal `${`.

Deliberately small: no template language, the spec is data (see DESIGN.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from deployer.errors import Mark, SpecError

_PATTERN = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)((?:[^}\\]|\\.)*))?\}|\$\{[^}]*\}?")


class Interpolator:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def __call__(self, text: str, mark: Mark) -> str:
        def replace(match: re.Match[str]) -> str:
            whole = match.group(0)
            if whole == "$${":
                return "${"
            name, op, arg = match.group(1), match.group(2), match.group(3)
            if name is None:
                raise SpecError(
                    f"invalid interpolation '{whole}'",
                    mark=mark,
                    hint="use ${VAR}, ${VAR:-default} or ${VAR:?message}; write $${ for a literal ${",
                )
            value = self.environ.get(name)
            if value is not None and (value != "" or op is None):
                return value
            if op == ":-":
                return arg or ""
            if op == ":?":
                raise SpecError(
                    f"{name} is not set: {arg}" if arg else f"{name} is not set",
                    mark=mark,
                    hint=f"export {name}=... before running deployer",
                )
            if value is None:
                raise SpecError(
                    f"environment variable {name} is not set",
                    mark=mark,
                    hint=f"export {name}=..., or give a default with ${{{name}:-default}}",
                )
            return value

        return _PATTERN.sub(replace, text)
