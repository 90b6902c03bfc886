"""The `deployer-schema` pre-commit hook: keep the JSON Schemas editors read (through a
`# yaml-language-server: $schema=...` header) next to the spec and current with the installed
deployer. Writes DIR/deployer.schema.json and DIR/overlay.schema.json from `deployer schema`; exits
1 when it changed a file (pre-commit's convention for a hook that fixes files), 0 when all were
current.

    python -m deployer.ci.schema_files [--dir schemas]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

FILES = {"deployer.schema.json": "spec", "overlay.schema.json": "overlay"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deployer-schema", description="write the schemas for editors")
    parser.add_argument("--dir", default="schemas", type=Path, help="where to write them (default: schemas)")
    parser.add_argument("files", nargs="*", help="ignored (pre-commit passes the changed files)")
    args = parser.parse_args(argv)
    changed = []
    for name, kind in FILES.items():
        text = subprocess.run(
            [sys.executable, "-m", "deployer", "schema", kind], check=True, capture_output=True, text=True
        ).stdout
        path = args.dir / name
        if not path.is_file() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            changed.append(str(path))
    for path in changed:
        print(f"deployer-schema: wrote {path}", file=sys.stderr)
    return 1 if changed else 0


if __name__ == "__main__":
    raise SystemExit(main())
