"""`deployer init CHART` starts a repository that validates, for each kind of chart reference, and
never overwrites anything."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

from testing.cli import run, tree_state

ROOT = Path(__file__).resolve().parents[1]


def schema(kind: str, cwd: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(run(["schema", kind], cwd).out)
    return loaded


def test_a_local_chart_gives_a_spec_that_validates_and_renders_its_values(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "charts" / "platform-config", tmp_path / "charts" / "platform-config")

    result = run(["init", "./charts/platform-config"], tmp_path)

    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "wrote deployer.yaml",
        "wrote environments/dev/values.yaml",
        "wrote values/platform-config.yaml",
    ]
    spec = yaml.safe_load((tmp_path / "deployer.yaml").read_text())
    assert spec["releases"] == [
        {
            "name": "platform-config",
            "chart": "./charts/platform-config",
            "values": ["values/platform-config.yaml"],
        }
    ]
    jsonschema.validate(spec, schema("spec", tmp_path))
    overlay = tmp_path / "environments" / "dev" / "values.yaml"
    assert overlay.read_text().startswith(
        "# yaml-language-server: $schema=../../schemas/overlay.schema.json\n"
    )
    jsonschema.validate(yaml.safe_load(overlay.read_text()), schema("overlay", tmp_path))
    assert run(["validate"], tmp_path).out == "deployer.yaml: ok (1 releases; checked dev)\n"
    assert run(["values", "-e", "dev", "platform-config"], tmp_path).code == 0


def test_a_repository_chart_declares_its_repository_and_pinned_version(tmp_path: Path) -> None:
    argv = [
        "init",
        "bitnami/postgresql",
        "--version",
        "16.4.1",
        "--repo-url",
        "https://charts.bitnami.com/bitnami",
    ]
    result = run([*argv, "--env", "staging", "--namespace", "db"], tmp_path)

    assert result.code == 0, result.err
    spec = yaml.safe_load((tmp_path / "deployer.yaml").read_text())
    assert spec["repositories"] == [{"name": "bitnami", "url": "https://charts.bitnami.com/bitnami"}]
    assert spec["defaults"]["namespace"] == "db"
    assert spec["releases"][0] | {"values": None} == {
        "name": "postgresql",
        "chart": "bitnami/postgresql",
        "version": "16.4.1",
        "values": None,
    }
    assert (tmp_path / "environments" / "staging" / "values.yaml").is_file()
    assert run(["validate"], tmp_path).code == 0


def test_a_range_is_written_as_given_and_the_next_steps_start_with_deployer_lock(tmp_path: Path) -> None:
    argv = [
        "init",
        "bitnami/postgresql",
        "--version",
        "~16.4",
        "--repo-url",
        "https://charts.bitnami.com/bitnami",
    ]
    result = run(argv, tmp_path)

    assert result.code == 0, result.err
    assert yaml.safe_load((tmp_path / "deployer.yaml").read_text())["releases"][0]["version"] == "~16.4"
    assert (
        "next: deployer lock (it resolves version '~16.4' into deployer.lock.yaml: commit both)" in result.err
    )
    unlocked = run(["validate"], tmp_path)  # until deployer lock has run
    assert unlocked.code == 1 and "run `deployer lock -e dev`" in unlocked.err


def test_a_version_that_is_no_range_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    argv = [
        "init",
        "bitnami/postgresql",
        "--version",
        "16.4 <",
        "--repo-url",
        "https://charts.bitnami.com/bitnami",
    ]
    result = run(argv, tmp_path)

    assert result.code == 1
    assert "--version: version '16.4 <' is not a version or a range helm reads" in result.err
    assert list(tmp_path.iterdir()) == []


def test_an_oci_chart_is_named_after_its_last_path_segment(tmp_path: Path) -> None:
    result = run(["init", "oci://registry.example.com/charts/api", "--version", "1.4.2"], tmp_path)

    assert result.code == 0, result.err
    release = yaml.safe_load((tmp_path / "deployer.yaml").read_text())["releases"][0]
    assert (release["name"], release["chart"], release["version"]) == (
        "api",
        "oci://registry.example.com/charts/api",
        "1.4.2",
    )
    assert (tmp_path / "values" / "api.yaml").is_file()
    assert run(["validate"], tmp_path).code == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["bitnami/postgresql", "--version", "1.0.0"],
            "names repository 'bitnami': deployer.yaml needs its URL",
        ),
        (["oci://r.example.com/api"], "repository and OCI charts need a pinned version"),
        (["./missing"], "./missing: no Chart.yaml there"),
        (["./charts/x", "--name", "My_App"], "'My_App' is not a valid release name"),
    ],
)
def test_an_incomplete_reference_is_refused_and_nothing_is_written(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    (tmp_path / "charts" / "x").mkdir(parents=True)
    (tmp_path / "charts" / "x" / "Chart.yaml").write_text("apiVersion: v2\nname: x\nversion: 0.1.0\n")
    before = tree_state(tmp_path)

    result = run(["init", *argv], tmp_path)

    assert result.code == 1
    assert message in result.err
    assert tree_state(tmp_path) == before


def test_it_refuses_to_overwrite_anything_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "values").mkdir()
    (tmp_path / "values" / "api.yaml").write_text("replicaCount: 7\n")
    before = tree_state(tmp_path)

    result = run(["init", "oci://registry.example.com/charts/api", "--version", "1.4.2"], tmp_path)

    assert result.code == 1
    assert "not overwriting values/api.yaml" in result.err
    assert tree_state(tmp_path) == before
