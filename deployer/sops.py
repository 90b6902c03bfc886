"""The only place that starts sops: decrypt an encrypted values file, in memory.

A values file is encrypted when its top level has sops' own `sops:` metadata mapping. We run the
sops binary directly (argv, no shell, our own timeout) and read the plain values from its stdout as
JSON: nothing decrypted is ever written to disk, logged, or put in an error message. sops finds its
keys itself (SOPS_AGE_KEY_FILE, SOPS_AGE_KEY, ~/.config/sops/age/keys.txt, PGP, cloud KMS).
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployer.errors import DeployerError, SpecError
from deployer.yamlsource import Document

log = logging.getLogger("deployer.sops")
DEFAULT_TIMEOUT = 60.0
METADATA = "sops"
# sops' exit codes (cmd/sops/codes): the data key could not be decrypted with any key at hand; the
# file's values or its MAC do not match what was encrypted.
_NO_DATA_KEY = 128
_TAMPERED = frozenset({24, 25, 51, 52})
# sops' rules for which values it leaves in clear by regex (checked by sops itself, with the MAC).
_REGEX_RULES = (
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
)
# Where sops keeps the key groups a file was encrypted for (one of them must be present).
_KEY_KINDS = ("age", "pgp", "kms", "gcp_kms", "azure_kv", "hc_vault", "key_groups")


class SopsNotFound(DeployerError):
    """No usable sops binary."""


class DecryptionError(SpecError):
    """An encrypted values file that sops could not decrypt: names the file, never its content."""


@dataclass(frozen=True)
class Sops:
    path: str
    environ: Mapping[str, str]
    timeout: float = DEFAULT_TIMEOUT

    def decrypt(self, path: Path, shown: str) -> dict[str, Any]:
        """The plain values of the encrypted file at `path` (displayed as `shown`)."""
        argv = [self.path, "--decrypt", "--input-type", "yaml", "--output-type", "json", str(path)]
        started = time.monotonic()
        try:
            proc = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self.timeout,
                env=dict(self.environ),
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise DecryptionError(
                f"cannot decrypt {shown}: sops did not finish within {self.timeout:.0f}s"
            ) from None
        except OSError as exc:
            raise SopsNotFound(f"cannot run sops ({self.path}) to decrypt {shown}: {exc.strerror}") from None
        log.debug("sops --decrypt %s -> exit %s in %.2fs", shown, proc.returncode, time.monotonic() - started)
        if proc.returncode != 0:
            raise DecryptionError(_failure(shown, proc.returncode, proc.stderr.decode(errors="replace")))
        try:
            data = json.loads(proc.stdout)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise DecryptionError(f"cannot decrypt {shown}: sops did not return a mapping of values")
        return data


def _failure(shown: str, code: int, stderr: str) -> str:
    """One line saying why, built from sops' exit code and its own wording (never its data)."""
    if code == _NO_DATA_KEY:
        if "did not match any of the recipients" in stderr or "incorrect identity" in stderr:
            return (
                f"cannot decrypt {shown}: none of your keys is one it was encrypted for "
                "(wrong SOPS_AGE_KEY_FILE or key?)"
            )
        return (
            f"cannot decrypt {shown}: no key to decrypt it was found "
            "(set SOPS_AGE_KEY_FILE, or the key sops needs for its recipients)"
        )
    if code in _TAMPERED:
        return (
            f"cannot decrypt {shown}: it was changed after it was encrypted (sops' integrity check failed); "
            "restore it from Git or edit it with `sops`"
        )
    last = next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), "no message")
    return f"cannot decrypt {shown}: sops exited with code {code}: {last}"


def locate(override: str | None, environ: Mapping[str, str]) -> Sops:
    """Find sops (--sops, then DEPLOYER_SOPS, then PATH)."""
    if override:
        candidate, where = override, f"--sops {override}"
    elif environ.get("DEPLOYER_SOPS"):
        candidate, where = environ["DEPLOYER_SOPS"], f"DEPLOYER_SOPS={environ['DEPLOYER_SOPS']}"
    else:
        candidate, where = "sops", "PATH"
    path = shutil.which(candidate, path=environ.get("PATH"))
    if path is None:
        raise SopsNotFound(
            f"sops not found (looked in {where}); it is needed to decrypt encrypted values files: "
            "install sops or point --sops / DEPLOYER_SOPS at it"
        )
    return Sops(path=path, environ=environ)


def is_encrypted(doc: Document) -> bool:
    """sops' own marker: a top-level `sops:` mapping."""
    return isinstance(doc.data, dict) and isinstance(doc.data.get(METADATA), dict)


def check_metadata(doc: Document) -> None:
    """That an encrypted document is well-formed sops YAML, without decrypting it."""
    meta = doc.data[METADATA]
    at = doc.mark((METADATA,), key=True)
    if not isinstance(meta.get("mac"), str) or not meta["mac"].startswith("ENC["):
        raise SpecError(
            "sops metadata without a MAC (sops.mac)",
            mark=at,
            hint="a file sops encrypted always has sops.mac: restore it from Git or encrypt it again",
        )
    if not any(meta.get(kind) for kind in _KEY_KINDS):
        raise SpecError(
            "sops metadata without any key to decrypt with (age, pgp, kms, ...)",
            mark=at,
            hint="encrypt it with sops --encrypt --age <recipient> (or another key kind)",
        )
    for path, value in _leaves(doc.data, ()):
        if path[0] == METADATA or value is None or (isinstance(value, str) and value.startswith("ENC[")):
            continue
        if not _left_plain(meta, path):
            raise SpecError(
                "a value in clear in a sops-encrypted file",
                mark=doc.mark(path),
                hint="edit encrypted files with `sops FILE`, never by hand",
            )


def _left_plain(meta: Mapping[str, Any], path: tuple[str | int, ...]) -> bool:
    """Whether sops' unencrypted_suffix/encrypted_suffix/regex rules leave this value in clear."""
    keys = [str(p) for p in path if isinstance(p, str)]
    if "unencrypted_suffix" in meta:
        return any(k.endswith(str(meta["unencrypted_suffix"])) for k in keys)
    if "encrypted_suffix" in meta:
        return not any(k.endswith(str(meta["encrypted_suffix"])) for k in keys)
    # Regex rules and comment rules: trust sops (it checks them against the MAC when decrypting).
    return any(r in meta for r in _REGEX_RULES)


def _leaves(value: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _leaves(sub, (*path, key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield from _leaves(sub, (*path, i))
    else:
        yield path, value


def decrypted_document(doc: Document, data: Mapping[str, Any]) -> Document:
    """The plain values with the encrypted file's marks: sops keeps the structure, so each key and
    value keeps the line and column it has in the encrypted file."""

    def keep(path: tuple[str | int, ...]) -> bool:
        return not path or path[0] != METADATA

    return Document(
        file=doc.file,
        data=dict(data),
        value_marks={p: m for p, m in doc.value_marks.items() if keep(p)},
        key_marks={p: m for p, m in doc.key_marks.items() if keep(p)},
        encrypted=True,
    )
