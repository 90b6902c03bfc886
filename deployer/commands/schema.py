from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from deployer.model import Spec


def spec_schema() -> dict[str, Any]:
    schema = Spec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "deployer.yaml"
    return schema


def overlay_schema() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "deployer environment overlay (environments/<env>/values.yaml)",
        "description": "Release name (or namespace/name) -> values overrides for that release.",
        "type": "object",
        "additionalProperties": {"type": ["object", "null"]},
    }


def schema(args: argparse.Namespace) -> int:
    doc = spec_schema() if args.kind == "spec" else overlay_schema()
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return 0
