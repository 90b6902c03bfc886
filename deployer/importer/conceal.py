"""Values the import writes that look secret (a key named like a password or token, or a long random
string) are written as a `${VAR}` reference, never in clear: the import cannot tell where such a value
came from (a file in clear, a variable helmfile read...), and a written spec is committed."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from deployer.secrets import YAML_BOOL_OR_NULL

_SECRET_KEY = re.compile(
    r"(password|passwd|pwd|passphrase|token|secret|api[-_]?key|private[-_]?key|access[-_]?key|"
    r"secret[-_]?key|credentials?)$",
    re.I,
)
# Keys that name a secret rather than hold one: existingSecret, secretName, tokenRef, passwordFile...
_NAMES_ONE = re.compile(r"^(existing|use|create)|(name|ref|file|path|enabled|keyref|mountpath)$", re.I)
# A camelCase key ending in Secret (or SecretKey) whose value is a Kubernetes object name names a
# Secret object or a key in one (credentialSecret: backup-auth, passwordSecretKey: password), as
# secretName does; a value that is a file name (secretKey: key.json) names a key too.
# (s3SecretKey, by contrast, holds a credential.)
_SECRET_OBJECT_KEY = re.compile(
    r"[a-z0-9]Secret$|(?i:password|passwords|user|username|token|cert|tls|ca)SecretKey$"
)
_FILE_NAME = re.compile(r"[\w.-]+\.(json|ya?ml|pem|crt|cert|key|txt|p12|jks|env)")
_OBJECT_NAME = re.compile(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?")
_TOKEN = re.compile(r"[A-Za-z0-9+/=_.~-]+")
_MARKER = "zzdeployersecret{}zz"


def looks_secret(key: str, value: Any) -> bool:
    if not isinstance(value, str) or not value.strip() or "${" in value or "zzdeployer" in value.lower():
        return False
    if value.strip().lower() in {*YAML_BOOL_OR_NULL, "none"}:  # a flag as text: "true"
        return False
    if _SECRET_KEY.search(key) and not _NAMES_ONE.search(key):
        names_object = _SECRET_OBJECT_KEY.search(key) and _OBJECT_NAME.fullmatch(value)
        return not (names_object or _FILE_NAME.fullmatch(value))
    return high_entropy(value)


def high_entropy(value: str) -> bool:
    """A long string of mixed upper case, lower case and digits with no pattern: a generated token.
    Hex digests (two classes), names, URLs and expressions (Host(`a.example.com`)) are not."""
    if len(value) < 20 or not _TOKEN.fullmatch(value) or value.startswith(("/", ".")):
        return False
    if not (
        any(c.islower() for c in value)
        and any(c.isupper() for c in value)
        and any(c.isdigit() for c in value)
    ):
        return False
    counts = Counter(value)
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return entropy >= 4.0


class Concealer:
    """Replaces each secret-looking value by a marker that the written text turns into `${VAR}`."""

    def __init__(self) -> None:
        self.variables: dict[str, str] = {}  # marker -> VAR

    def conceal(self, data: Any, prefix: str) -> tuple[Any, list[tuple[str, str]]]:
        """`data` with each secret-looking value replaced, and (dotted path, VAR) of each."""
        found: list[tuple[str, str]] = []

        def walk(node: Any, path: list[str]) -> Any:
            if isinstance(node, Mapping):
                out = {}
                for key, value in node.items():
                    if looks_secret(str(key), value):
                        var = self._variable([prefix, *path, str(key)])
                        found.append((".".join([*path, str(key)]), var))
                        marker = _MARKER.format(len(self.variables))
                        self.variables[marker] = var
                        out[key] = marker
                    else:
                        out[key] = walk(value, [*path, str(key)])
                return out
            if isinstance(node, list):
                return [walk(v, [*path, str(i)]) for i, v in enumerate(node)]
            return node

        return walk(data, []), found

    def _variable(self, parts: list[str]) -> str:
        base = re.sub(r"[^A-Z0-9]+", "_", "_".join(parts).upper()).strip("_") or "SECRET"
        if base[0].isdigit():
            base = f"V_{base}"
        name, n = base, 2
        while name in self.variables.values():
            name, n = f"{base}_{n}", n + 1
        return name

    def restore(self, text: str) -> str:
        for marker, var in self.variables.items():
            text = text.replace(marker, "${" + var + "}")
        return text
