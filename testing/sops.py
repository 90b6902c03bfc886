"""Real age keys and real sops-encrypted files for tests (nothing here is a fake)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from testing.tools import ROOT, age_keygen_binary, sops_binary

CHART = ROOT / "tests" / "data" / "charts" / "vault-app"
CANARY = "pw-canary-7f3a9c2e"  # in secrets/api.enc.yaml, db.password
HOST_CANARY = "host-canary-51bd.internal"  # in the encrypted overlay, api.db.host


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


def make_project(root: Path, key: AgeKey, *, namespace: str = "apps", env: str = "dev") -> Path:
    """One release of the vault-app chart: a plain values file, an encrypted one, a plain overlay
    and an encrypted overlay."""
    shutil.copytree(CHART, root / "chart")
    (root / "deployer.yaml").write_text(
        "environments:\n"
        f"  {env}:\n"
        f"    values: [environments/{env}/values.yaml, environments/{env}/secrets.enc.yaml]\n"
        "releases:\n"
        "  - name: api\n"
        f"    namespace: {namespace}\n"
        "    chart: ./chart\n"
        "    values:\n"
        "      - values/api.yaml\n"
        "      - secrets/api.enc.yaml\n"
    )
    (root / "values").mkdir()
    (root / "values" / "api.yaml").write_text("replicaCount: 2\ndsnConfigMap: true\n")
    (root / "environments" / env).mkdir(parents=True)
    (root / "environments" / env / "values.yaml").write_text("api:\n  image: nginx:1.28\n")
    encrypt(f"db:\n  user: app-user\n  password: {CANARY}\n", root / "secrets" / "api.enc.yaml", key)
    encrypt(f"api:\n  db:\n    host: {HOST_CANARY}\n", root / "environments" / env / "secrets.enc.yaml", key)
    return root
