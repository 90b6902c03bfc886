"""`deployer schema` validates the real spec and overlays, so editors can check them."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from testing.cli import run

ROOT = Path(__file__).resolve().parent.parent


def schema(kind: str) -> dict[str, object]:
    result = run(["schema", kind], ROOT)
    assert result.code == 0
    loaded: dict[str, object] = json.loads(result.out)
    return loaded


def test_the_example_spec_and_overlays_validate_against_the_generated_schemas() -> None:
    jsonschema.validate(yaml.safe_load((ROOT / "deployer.yaml").read_text()), schema("spec"))
    for overlay in sorted((ROOT / "environments").glob("*/values.yaml")):
        jsonschema.validate(yaml.safe_load(overlay.read_text()), schema("overlay"))


def test_the_schema_rejects_unknown_keys_so_editors_flag_typos() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"releases": [{"name": "a", "chart": "./c", "namespce": "x"}]}, schema("spec"))


def test_the_committed_schema_files_are_current() -> None:
    assert json.loads((ROOT / "docs" / "deployer.schema.json").read_text()) == schema("spec")
    assert json.loads((ROOT / "docs" / "overlay.schema.json").read_text()) == schema("overlay")
