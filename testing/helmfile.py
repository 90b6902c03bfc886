"""Helpers of the `import helmfile` tests: the pinned helmfile, a private helm home, and renders of
helmfile and deployer compared object by object."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from testing.cli import run

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "helmfile"
ObjectKey = tuple[str, str, str, str]


def project_with(tmp_path: Path, files: Mapping[str, str], chart: str = "echo") -> Path:
    """A project with the echo chart (at charts/CHART) and these files (dedented)."""
    project = tmp_path / "gitops"
    shutil.copytree(DATA / "charts" / "echo", project / "charts" / chart)
    for name, text in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(textwrap.dedent(text))
    return project


def copy_case(case: str, tmp_path: Path) -> Path:
    shutil.copytree(DATA / "charts", tmp_path / "charts")
    return Path(shutil.copytree(DATA / case, tmp_path / case))


def helm_env(tmp_path: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A private helm home: helmfile's `helm repo add` must not touch the user's."""
    home = tmp_path / "helm-home"
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
        "KUBECONFIG": str(home / "no-kubeconfig"),
        **(extra or {}),
    }


def objects(text: str) -> dict[ObjectKey, dict[str, Any]]:
    out: dict[ObjectKey, dict[str, Any]] = {}
    for doc in yaml.safe_load_all(text):
        if not doc:
            continue
        meta = doc.get("metadata", {})
        key = (doc["apiVersion"], doc["kind"], meta.get("namespace", ""), meta["name"])
        assert key not in out, f"two objects {key}"
        out[key] = doc
    return out


def helmfile_template(
    helmfile: Path, helm: Path, state: Path, env: str, environ: Mapping[str, str]
) -> dict[ObjectKey, dict[str, Any]]:
    proc = subprocess.run(
        [str(helmfile), "--helm-binary", str(helm), "-f", str(state), "-e", env, "template", "--skip-deps"],
        capture_output=True,
        text=True,
        check=False,
        cwd=state.parent,
        env=dict(environ),
    )
    assert proc.returncode == 0, proc.stderr
    return objects(proc.stdout)


def deployer_template(
    project: Path, helm: Path, env: str, environ: Mapping[str, str]
) -> dict[ObjectKey, Any]:
    result = run(["template", "-e", env], project, {**environ, "DEPLOYER_HELM": str(helm)})
    assert result.code == 0, result.err
    return objects(result.out)


def assert_same_objects(expected: Mapping[ObjectKey, Any], actual: Mapping[ObjectKey, Any]) -> None:
    assert sorted(actual) == sorted(expected)
    for key, want in expected.items():
        assert actual[key] == want, key


def written(project: Path) -> dict[str, str]:
    """The files an import wrote, by name."""
    names = [
        "deployer.yaml",
        "IMPORT-REPORT.md",
        *(str(p.relative_to(project)) for p in project.glob("environments/*/values.yaml")),
        *(str(p.relative_to(project)) for p in sorted(project.glob("deployer.d/*.yaml"))),
    ]
    return {n: (project / n).read_text() for n in names if (project / n).is_file()}
