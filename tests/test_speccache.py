"""A spec pydantic accepted once is rebuilt on the next run without importing pydantic, exactly as
pydantic builds it; anything it cannot be sure of goes to pydantic; it keeps no spec data."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from deployer import speccache
from deployer.project import load_project
from testing.cli import run

ROOT = Path(__file__).resolve().parent.parent


def same(light: Any, real: Any, where: str = "spec") -> None:
    """`light` (speccache's objects) holds what pydantic's `real` holds, field by field."""
    if hasattr(type(real), "model_fields"):
        for name in type(real).model_fields:
            same(getattr(light, name), getattr(real, name), f"{where}.{name}")
    elif isinstance(real, dict):
        assert isinstance(light, dict) and list(light) == list(real), where
        for key in real:
            same(light[key], real[key], f"{where}[{key}]")
    elif isinstance(real, list):
        assert isinstance(light, list) and len(light) == len(real), where
        for i, item in enumerate(real):
            same(light[i], item, f"{where}[{i}]")
    else:
        assert type(light) is type(real) and light == real, where


def test_the_example_spec_is_rebuilt_exactly_as_pydantic_builds_it(tmp_path: Path) -> None:
    env = {"DEPLOYER_CACHE_DIR": str(tmp_path / "cache"), "PROD_KUBE_CONTEXT": "prod"}
    first = load_project(ROOT / "deployer.yaml", env)
    assert hasattr(type(first.spec), "model_fields")  # validated by pydantic
    speccache.flush()  # what deployer.main does after a command that succeeded
    second = load_project(ROOT / "deployer.yaml", env)
    assert isinstance(second.spec, speccache.SpecObject)
    same(second.spec, first.spec)
    same(second.environment("dev"), first.environment("dev"))


SPEC = """\
defaults:
  namespace: shop
  timeout: {timeout}
  historyMax: 3
  crds: createReplace
  vars: {{domain: example.com}}
environments:
  dev: {{}}
  prod: {{kubeContext: prod, vars: {{token: {{value: "${{TOKEN}}", sensitive: true}}}}}}
releases:
  - name: api
    chart: ./chart
    labels: {{tier: backend, canary: true}}
    values:
      - {{password: "${{PASSWORD}}", host: !var "api.${{domain}}"}}
"""


def project(tmp_path: Path, timeout: str = "300") -> Path:
    (tmp_path / "chart").mkdir(exist_ok=True)
    (tmp_path / "chart" / "Chart.yaml").write_text("apiVersion: v2\nname: chart\nversion: 1.0.0\n")
    (tmp_path / "deployer.yaml").write_text(SPEC.format(timeout=timeout))
    return tmp_path / "deployer.yaml"


def test_a_value_pydantic_would_coerce_goes_to_pydantic(tmp_path: Path) -> None:
    env = {"DEPLOYER_CACHE_DIR": str(tmp_path / "cache"), "PASSWORD": "pw"}
    path = project(tmp_path, timeout='"300"')  # a string for an int field: pydantic makes it 300
    for _ in range(2):
        spec = load_project(path, env).spec
        speccache.flush()
        assert spec.defaults.timeout == 300
        # labels' validator makes `true` the string "true": not exactly typed, so pydantic every time
        assert spec.releases[0].labels == {"tier": "backend", "canary": "true"}
        assert hasattr(type(spec), "model_fields")


def test_the_cache_holds_no_spec_data(tmp_path: Path) -> None:
    env = {"DEPLOYER_CACHE_DIR": str(tmp_path / "cache"), "PASSWORD": "s3cr3t-in-the-spec"}
    path = project(tmp_path)
    path.write_text(path.read_text().replace("canary: true", "canary: 'yes'"))
    load_project(path, env)
    speccache.flush()
    assert isinstance(load_project(path, env).spec, speccache.SpecObject)
    for file in (tmp_path / "cache" / "specs").iterdir():
        text = file.read_bytes()
        assert b"s3cr3t" not in text and b"example.com" not in text and b"backend" not in text, file.name


def test_a_bad_spec_is_reported_by_pydantic_every_time(tmp_path: Path) -> None:
    path = project(tmp_path, timeout="-1")
    for _ in range(2):
        result = run(["validate"], tmp_path, {"DEPLOYER_CACHE_DIR": str(tmp_path / "cache"), "PASSWORD": "x"})
        assert result.code == 1
        assert "deployer.yaml:3:12" in result.err and "timeout" in result.err, result.err
    assert path.exists()


def test_a_second_run_does_not_import_pydantic(tmp_path: Path) -> None:
    spec = tmp_path / "project"
    shutil.copytree(ROOT / "charts", spec / "charts")
    shutil.copy(ROOT / "deployer.yaml", spec / "deployer.yaml")
    shutil.copytree(ROOT / "values", spec / "values")
    shutil.copytree(ROOT / "environments", spec / "environments")
    code = (
        "import sys; from pathlib import Path; from deployer.project import load_project; "
        f"p = load_project(Path({str(spec / 'deployer.yaml')!r})); p.environment('dev'); "
        "print('pydantic' in sys.modules); import deployer.speccache as c; c.flush()"
    )
    env = {
        "DEPLOYER_CACHE_DIR": str(tmp_path / "cache"),
        "PROD_KUBE_CONTEXT": "prod",
        "PATH": "/usr/bin:/bin",
    }
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout
        for _ in range(2)
    ]
    assert runs == ["True\n", "False\n"]
