"""Copies of the repository's example project for tests, isolated per test: its own namespace and
its own environment names, so that tests sharing one cluster never see each other's releases."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def copy_example(dst: Path, *, namespace: str = "shop", env_suffix: str = "") -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "deployer.yaml", dst / "deployer.yaml")
    shutil.copytree(ROOT / "values", dst / "values")
    shutil.copytree(ROOT / "charts", dst / "charts", ignore=shutil.ignore_patterns("*.tgz"))
    for env_dir in (ROOT / "environments").iterdir():
        shutil.copytree(env_dir, dst / "environments" / f"{env_dir.name}{env_suffix}")
    spec = (dst / "deployer.yaml").read_text().replace("namespace: shop", f"namespace: {namespace}")
    if env_suffix:
        spec = re.sub(r"^  (dev|staging|prod):", rf"  \1{env_suffix}:", spec, flags=re.M)
    (dst / "deployer.yaml").write_text(spec)
    return dst
