"""Environment `secrets:` (sops-encrypted files) for a helmfile resolved in the import's sandbox,
never decrypted.

helmfile reads an environment's `secrets:` through the helm-secrets plugin (`helm secrets decrypt
FILE`, its output parsed as the environment's values). The sandbox's helm answers that itself: with
the file's structure (sops leaves its keys in clear) and, for each encrypted value, the marker of a
variable named after its key path (`redis.password` -> `REDIS_PASSWORD`). The templates that read
the value then give the marker, which the import writes as `${REDIS_PASSWORD}` (or a sensitive
variable, in values): no key is needed, and no secret can reach a written file. Each file helmfile
asked for is logged, so that the import reports it with the variables its values became.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

LOG_VARIABLE = "DEPLOYER_IMPORT_SOPS_LOG"
PLUGIN_YAML = 'name: "secrets"\nversion: "4.6.0"\nusage: "the import sandbox: sops files, never decrypted"\n'
_ENCRYPTED = re.compile(r"^ENC\[[A-Z0-9_]+,data:")


def required_marker(var: str) -> str:
    """A required variable's marker (EnvMarkers), named after the variable: environments resolved
    side by side, and the sandbox's helm answering for a sops file, find the same one."""
    return f"zzdeployerreq{hashlib.sha1(var.encode()).hexdigest()[:12]}zz"


def is_encrypted(data: Any) -> bool:
    return isinstance(data, Mapping) and isinstance(data.get("sops"), Mapping)


def variable(path: tuple[str, ...]) -> str:
    """The variable an encrypted value at `path` becomes: its key path in upper snake case."""
    name = re.sub(r"[^A-Z0-9]+", "_", "_".join(path).upper()).strip("_") or "SECRET"
    return f"V_{name}" if name[0].isdigit() else name


def leaves(data: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(data, Mapping):
        for key, value in data.items():
            if not path and key == "sops":
                continue
            yield from leaves(value, (*path, str(key)))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from leaves(value, (*path, str(i)))
    else:
        yield path, data


def variables(data: Any) -> list[str]:
    """The variables of an encrypted file's values, sorted (each once)."""
    return sorted({variable(p) for p, v in leaves(data) if isinstance(v, str) and _ENCRYPTED.match(v)})


def standin(data: Any, path: tuple[str, ...] = ()) -> Any:
    """`data` without its `sops:` metadata, each encrypted value replaced by its variable's marker."""
    if isinstance(data, Mapping):
        return {k: standin(v, (*path, str(k))) for k, v in data.items() if path or k != "sops"}
    if isinstance(data, list):
        return [standin(v, (*path, str(i))) for i, v in enumerate(data)]
    if isinstance(data, str) and _ENCRYPTED.match(data):
        return required_marker(variable(path))
    return data


def main(args: list[str]) -> int:
    """`helm secrets decrypt|view FILE` in the sandbox: the stand-in of FILE on stdout."""
    file = Path(args[2]) if len(args) > 2 else None
    if file is None:
        sys.stderr.write("helm secrets: no file given\n")
        return 1
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        sys.stderr.write(f"helm secrets: cannot read {file}: {exc}\n")
        return 1
    if not is_encrypted(data):
        sys.stderr.write(f"helm secrets: {file} is not a sops-encrypted file\n")
        return 1
    log = os.environ.get(LOG_VARIABLE)
    if log:
        with open(log, "a", encoding="utf-8") as out:
            out.write(json.dumps({"file": str(file), "variables": variables(data)}) + "\n")
    sys.stdout.write(yaml.safe_dump(standin(data), sort_keys=False))
    return 0


def decrypted(log: Path) -> dict[str, list[str]]:
    """file -> its variables, for every file helmfile asked the sandbox to decrypt."""
    out: dict[str, list[str]] = {}
    if not log.exists():
        return out
    for line in log.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        out[entry["file"]] = entry["variables"]
    return out


def logged_variables(log: Path) -> list[str]:
    return sorted({v for names in decrypted(log).values() for v in names})


def notes(log: Path, shown: Callable[[str], str]) -> list[tuple[str, int, str, str]]:
    """One report line per file helmfile asked for (`shown`: its path as the user knows it)."""
    return [(shown(f), 1, "environment secrets", why(names)) for f, names in sorted(decrypted(log).items())]


def why(variables: list[str]) -> str:
    shown = ", ".join(f"${{{v}}}" for v in variables[:6]) + (", ..." if len(variables) > 6 else "")
    return (
        "encrypted with sops, and the import never decrypts: what the templates read from it is "
        "written as a variable, never its value: in values, a sensitive variable (their lines name "
        f"each); elsewhere, one named after its key ({shown}). Set them where deployer runs (CI "
        "secrets), or put the values in a sops-encrypted environments/<env>/values.yaml, which "
        "deployer decrypts"
    )
