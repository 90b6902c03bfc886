"""Real age keys and real sops-encrypted files for tests (nothing here is a fake)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from testing.tools import age_keygen_binary, sops_binary


@dataclass(frozen=True)
class AgeKey:
    file: Path  # the private key, as SOPS_AGE_KEY_FILE names it
    recipient: str  # the public key, as `sops --encrypt --age` takes it


def age_key(directory: Path, name: str = "key") -> AgeKey:
    directory.mkdir(parents=True, exist_ok=True)
    file = directory / f"{name}.txt"
    subprocess.run([str(age_keygen_binary()), "-o", str(file)], check=True, capture_output=True)
    recipient = next(
        line.split(": ", 1)[1] for line in file.read_text().splitlines() if line.startswith("# public key: ")
    )
    return AgeKey(file, recipient)


def encrypt(plain: str, dest: Path, key: AgeKey) -> Path:
    """Write `plain` (YAML) to `dest` encrypted by the real sops for `key`; no plain file on disk."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
    out = subprocess.run(
        [
            str(sops_binary()),
            "--encrypt",
            "--age",
            key.recipient,
            "--input-type",
            "yaml",
            "--output-type",
            "yaml",
            "/dev/stdin",
        ],
        input=plain,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    dest.write_text(out.stdout)
    return dest
