"""How the files read the process environment, beyond the marker each variable gets (markers.py):
rewrites of the sandbox's copies, and the report lines of what they freeze. Pure text work.

- `env "X" | default $name`, where the file assigns `$name` one quoted text and nothing else
  (`{{ $name := "consensys/app" }}`): the text in its place, so the read becomes `env "X" | default
  "text"`, imported as `${X:-text}` (without it the default was lost: `${X:-}`);
- `env "X" | default 1` (a number, true or false): read as `default "1"` is, under a name of its own
  (`${X:-1}`); where helmfile wants a number or boolean the marker does not parse, and the variable
  is frozen (markers.py);
- a default the import cannot see as a text (`env "X" | default .Values.x`): the read renamed to a
  variable that is never set, so helmfile resolves it with its default: frozen at that value, with a
  loss at its line (deployer has no template to compute it from);
- `b64dec`/`b32dec` of anything but a quoted text: helmfile would decode a marker into bytes that are
  no text (its values file then fails to parse, and the environment's values were lost): the copy
  passes its input through undecoded, with a loss at its line.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

_ACTION = re.compile(r"\{\{.*?\}\}", re.S)
_VAR = r"\$[A-Za-z_][A-Za-z0-9_]*"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_LITERAL_ASSIGN = re.compile(r"\{\{-?\s*(" + _VAR + r")\s*:?=\s*(" + _QUOTED + r")\s*-?\}\}")
_ANY_ASSIGN = re.compile(r"(" + _VAR + r")\s*:?=")
_DEFAULT_VAR = re.compile(r"\bdefault\s+(" + _VAR + r")(?![\w.])")
_ENV_READ = re.compile(r'\benv\s+"')
_NAME = r'"([A-Za-z_][A-Za-z0-9_]*)"'
_SCALAR = r"(?:true|false|-?\d+(?:\.\d+)?)(?=[\s|)}])"
# `env "X" | default 1` and `default 1 (env "X")`: a number or boolean
_TYPED = re.compile(r"\benv\s+" + _NAME + r"(\s*\|\s*default\s+)(" + _SCALAR + ")")
_TYPED_BEFORE = re.compile(r"\bdefault\s+(" + _SCALAR + r")\s+\(\s*env\s+" + _NAME + r"\s*\)")
# `env "X" | default EXPR` and `default EXPR (env "X")` with EXPR no quoted text, number or boolean
_UNTRACED = re.compile(r"\benv\s+" + _NAME + r'(\s*\|\s*default\s+)(?!["\s]|' + _SCALAR + r")([^\s|)}]+)")
_UNTRACED_BEFORE = re.compile(
    r'\bdefault\s+(?!["(\s]|' + _SCALAR + r")([^\s|)}]+)\s+\(\s*env\s+" + _NAME + r"\s*\)"
)
_DECODE = re.compile(r"\b(b64dec|b32dec)\b")
_LITERAL_DECODE = re.compile(_QUOTED + r"\s*\|\s*(?:b64dec|b32dec)\b|\b(?:b64dec|b32dec)\s+" + _QUOTED)
UNSET_SUFFIX = "__DEPLOYER_UNSET"


def literal_defaults(text: str) -> str:
    """The text with `default $name` inside each action that reads the environment replaced by the
    quoted text `$name` holds, where the file assigns it that one text and nothing else."""
    texts: dict[str, set[str]] = {}
    literal_count: Counter[str] = Counter()
    for match in _LITERAL_ASSIGN.finditer(text):
        texts.setdefault(match.group(1), set()).add(match.group(2))
        literal_count[match.group(1)] += 1
    every = Counter(m.group(1) for m in _ANY_ASSIGN.finditer(text))
    known = {n: next(iter(t)) for n, t in texts.items() if len(t) == 1 and every[n] == literal_count[n]}
    if not known:
        return text

    def action(match: re.Match[str]) -> str:
        if not _ENV_READ.search(match.group(0)):
            return match.group(0)
        return _DEFAULT_VAR.sub(
            lambda m: f"default {known[m.group(1)]}" if m.group(1) in known else m.group(0), match.group(0)
        )

    return _ACTION.sub(action, text)


def env_name(var: str, default: str) -> str:
    """The name helmfile reads `env "VAR" | default "x"` under in the copy: one per default, so that
    each read gets its own marker (and its own `${VAR:-x}`)."""
    return f"{var}__DEPLOYER_DEFAULT_{hashlib.sha1(default.encode()).hexdigest()[:10]}"


def typed_reads(text: str) -> list[tuple[str, str]]:
    """(VAR, default) of each `env "VAR"` read with a number or boolean default (after
    literal_defaults): markers.py gives each a marker under env_name(VAR, default)."""
    found = [(m.group(1), m.group(3)) for m in _TYPED.finditer(text)]
    return found + [(m.group(2), m.group(1)) for m in _TYPED_BEFORE.finditer(text)]


def split_typed(text: str) -> str:
    """The text with each read of typed_reads renamed to env_name(VAR, default)."""

    def after(m: re.Match[str]) -> str:
        return f'env "{env_name(m.group(1), m.group(3))}"{m.group(2)}{m.group(3)}'

    def before(m: re.Match[str]) -> str:
        return m.group(0).replace(f'"{m.group(2)}"', f'"{env_name(m.group(2), m.group(1))}"')

    return _ACTION.sub(lambda a: _TYPED_BEFORE.sub(before, _TYPED.sub(after, a.group(0))), text)


def _untraced(action: str) -> list[tuple[str, str]]:
    """(VAR, the default's expression as written) of each read whose default is no text."""
    found = [(m.group(1), _expression(action, m.start(3))) for m in _UNTRACED.finditer(action)]
    return found + [(m.group(2), _expression(action, m.start(1))) for m in _UNTRACED_BEFORE.finditer(action)]


def _expression(action: str, start: int) -> str:
    """The term that starts at `start`: up to its closing parenthesis when it opens one."""
    if action[start] != "(":
        term = re.match(r"[^\s|)}]+", action[start:])
        return term.group(0) if term else action[start:].strip()
    depth = 0
    for i in range(start, len(action)):
        depth += {"(": 1, ")": -1}.get(action[i], 0)
        if depth == 0:
            return " ".join(action[start : i + 1].split())
    return action[start:].strip()


def freeze_untraced(text: str) -> str:
    """The text with each read whose default is no text (after literal_defaults) renamed to a
    variable that is never set: helmfile resolves it with its default."""

    def action(match: re.Match[str]) -> str:
        out = _UNTRACED.sub(
            lambda m: f'env "{m.group(1)}{UNSET_SUFFIX}"{m.group(2)}{m.group(3)}', match.group(0)
        )
        return _UNTRACED_BEFORE.sub(
            lambda m: m.group(0).replace(f'"{m.group(2)}"', f'"{m.group(2)}{UNSET_SUFFIX}"'), out
        )

    return _ACTION.sub(action, text)


def undecoded(text: str) -> str:
    """The text with each `b64dec`/`b32dec` of anything but a quoted text passing its input through."""

    def action(match: re.Match[str]) -> str:
        if not _DECODE.search(match.group(0)) or _LITERAL_DECODE.search(match.group(0)):
            return match.group(0)
        return _DECODE.sub("toString", match.group(0))

    return _ACTION.sub(action, text)


def rewritten(text: str) -> str:
    """A file's copy for the sandbox, as far as this module goes."""
    return undecoded(freeze_untraced(split_typed(literal_defaults(text))))


FROZEN_DEFAULT_WHY = (
    "read with a default the import cannot write as ${{{var}:-...}} ({expr} is computed by the "
    "template): imported as helmfile resolves it with {var} unset, frozen at its default; deployer "
    "reads no variable there: to change it, edit the imported value (per environment under "
    "environments.<env>), or write ${{{var}:-VALUE}} in its place with the default spelled out"
)
UNDECODED_WHY = (
    "{func} decodes a value while helmfile renders the file, and deployer has no template to decode it "
    "with: the value is imported undecoded (as its input, e.g. the variable it reads); write the decoded "
    "value in the values (or in a sops-encrypted values file) in its place"
)


def notes(texts: Mapping[Path, str]) -> list[tuple[Path, int, str, str]]:
    """(file, line, what, why) of each read frozen at its default and each decode left undone."""
    out: list[tuple[Path, int, str, str]] = []
    for path, original in sorted(texts.items()):
        text = literal_defaults(original)
        for match in _ACTION.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            for var, expr in _untraced(match.group(0)):
                out.append((path, line, f"env {var}", FROZEN_DEFAULT_WHY.format(var=var, expr=expr)))
            decode = _DECODE.search(match.group(0))
            if decode and not _LITERAL_DECODE.search(match.group(0)):
                out.append((path, line, decode.group(1), UNDECODED_WHY.format(func=decode.group(1))))
    return out
