"""Markers for the process environment's variables the files read: helmfile resolves the files with
each variable set to a marker, never its value, and the written text turns each marker back into
`${VAR}` (`requiredEnv "VAR"`) or `${VAR:-default}` (`env "VAR" | default "x"`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from deployer.importer import env_reads
from deployer.importer.env_reads import env_name, literal_defaults
from deployer.importer.sandbox import DEFAULT_ENV, ENV_READ
from deployer.importer.sops_standin import required_marker


@dataclass(frozen=True)
class EnvMarkers:
    """Environment variables that helmfile reads (`env`, `requiredEnv`), each with the marker it is
    given while helmfile resolves the file, so that `${VAR}` (or `${VAR:-default}` for `env "VAR" |
    default "x"`) can take the marker's place. helmfile never sees the variables' values."""

    required: Mapping[str, str] = field(default_factory=dict)  # marker -> VAR
    optional: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, str] = field(default_factory=dict)  # marker -> default, for optional
    # marker -> the name helmfile reads, when not VAR: each default of a variable gets its own (the
    # sandbox renames `env "VAR" | default "x"`), so that each becomes its own ${VAR:-x}
    names: Mapping[str, str] = field(default_factory=dict)
    literal: Mapping[str, str] = field(default_factory=dict)  # marker -> the text that replaces it
    # marker -> VAR of an optional variable left unset: helmfile read it in a field that is not text
    # (a boolean, a number, a list), where a marker does not parse
    frozen: Mapping[str, str] = field(default_factory=dict)

    def environ(self) -> dict[str, str]:
        pairs = (*self.required.items(), *self.optional.items())
        return {self.names.get(marker, var): marker for marker, var in pairs if marker not in self.frozen}

    def typed(self, variables: Iterable[str]) -> EnvMarkers | None:
        """These markers with the optional ones of `variables` frozen (helmfile could not unmarshal
        them), or None when none is left to freeze."""
        names = set(variables)
        found = {m: v for m, v in self.optional.items() if v in names and m not in self.frozen}
        return replace(self, frozen={**self.frozen, **found}) if found else None

    def restore(self, text: str) -> str:
        for marker, var in self.required.items():
            text = _replace(text, marker, "${" + var + "}")
        for marker, var in self.optional.items():
            text = _replace(text, marker, "${" + var + ":-" + self.defaults.get(marker, "") + "}")
        for marker, by in self.literal.items():
            text = _replace(text, marker, by)
        return text

    def unset(self, text: str) -> str | None:
        """The text as helmfile resolves it with every variable it reads unset: each optional
        marker its default; None when a required one is in it (helmfile would stop)."""
        if any(m.lower() in text.lower() for m in self.required):
            return None
        for marker in self.optional:
            text = _replace(text, marker, self.defaults.get(marker, ""))
        return text

    def found_in(self, text: str) -> bool:
        return any(m.lower() in text.lower() for m in (*self.required, *self.optional))

    def with_required(self, var: str) -> EnvMarkers:
        return replace(self, required={**self.required, required_marker(var): var})


def _replace(text: str, marker: str, by: str) -> str:
    return re.compile(re.escape(marker), re.I).sub(lambda _: by, text)


# Variables a shell sets for the process itself, not the user's settings: helmfile gets their real
# value in the sandbox (PWD: the directory it runs in), so a path built from one stays a path.
PROCESS = {"PWD"}


def markers_for(texts: Iterable[str]) -> EnvMarkers:
    """A marker for each variable any of the files reads with requiredEnv or env, and one for each
    default a variable is read with (`env "VAR" | default "x"`: helmfile reads it under a name of
    its own, see env_reads.env_name)."""
    required: set[str] = set()
    optional: set[tuple[str, str]] = set()
    for text in map(literal_defaults, texts):
        for func, var, default in ENV_READ.findall(text):
            if var in PROCESS:
                continue
            if func == "requiredEnv":
                required.add(var)
            else:
                optional.add((var, unquote(default)))
        for default, var in DEFAULT_ENV.findall(text):
            optional.add((var, unquote(default)))
        optional.update(env_reads.typed_reads(text))
    optional -= {(var, "") for var in required}  # read under the same name: required wins
    reads = sorted([(var, None) for var in required] + sorted(optional), key=lambda r: (r[0], r[1] or ""))
    out = EnvMarkers()
    for i, (var, default) in enumerate(reads):
        # Lowercase letters and digits only: valid in names, namespaces, YAML and quotes alike.
        marker = f"zzdeployerenv{i}zz"
        if default is None:
            out = replace(out, required={**out.required, marker: var})
            continue
        names = {**out.names, marker: env_name(var, default)} if default else out.names
        out = replace(out, optional={**out.optional, marker: var}, defaults={**out.defaults, marker: default})
        out = replace(out, names=names)
    return out


def unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


FROZEN_WHY = (
    "read where helmfile wants a boolean, a number or a list, not text: imported as helmfile resolves "
    "it with {var} unset ({action}), frozen; deployer reads no variable there: write the value you "
    "want in deployer.yaml (per environment under environments.<env>)"
)


def frozen_notes(markers: EnvMarkers, texts: Mapping[Path, str]) -> list[tuple[Path, int, str, str]]:
    """(file, line, what, why) of each variable frozen at its unset value, at its first read; of each
    read frozen at a default the import cannot write, and each decode left undone (env_reads.py)."""
    out: list[tuple[Path, int, str, str]] = list(env_reads.notes(texts))
    for var in sorted(set(markers.frozen.values())):
        read = re.compile(r"\{\{[^{}]*?\benv\s+\"" + re.escape(var) + r"\"[^{}]*?\}\}")
        where = [(f, t, m) for f, t in sorted(texts.items()) if (m := read.search(t))]
        if where:
            file, text, match = where[0]
            line = text.count("\n", 0, match.start()) + 1
            out.append((file, line, f"env {var}", FROZEN_WHY.format(var=var, action=match.group(0))))
    return out
