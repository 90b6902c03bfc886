"""The floor of the benchmark: what helm alone costs for the work deployer asks of it (issue 14).

`python floor.py values SPEC_DIR OUT_DIR` runs with deployer on PYTHONPATH (the copy run.py takes at
start) and writes, for every release of the `dev` environment, the one merged values file deployer
gives helm (`NNNN.values.yaml`) and `releases.json` (name, namespace, chart directory, values file,
in spec order). run.py then times helm on those files:

- render floor: `helm template` of every release, one at a time, so that each one's CPU (from
  os.wait4) is its own; the sum over the cores is what no tool that renders with helm can beat.
- install floor: one `helm upgrade --install` of a release of each chart, with and without
  `--wait`, into a scratch namespace, then uninstalled.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def write_values(spec_dir: Path, out: Path) -> None:
    from deployer.desired import resolve
    from deployer.merge import merge_layers
    from deployer.project import load_project
    from deployer.render import write_values as write

    project = load_project(spec_dir)
    out.mkdir(parents=True, exist_ok=True)
    listing = []
    for i, rel in enumerate(r for r in resolve(project, "dev", ()) if r.installed):
        path = write(out, f"{i:04d}", merge_layers(list(rel.layers)).values)
        chart = (spec_dir / rel.chart.ref).resolve()
        listing.append(
            {"name": rel.name, "namespace": rel.namespace, "chart": str(chart), "values": str(path)}
        )
    (out / "releases.json").write_text(json.dumps(listing, indent=1))


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "values":
        sys.exit("usage: floor.py values SPEC_DIR OUT_DIR")
    write_values(Path(sys.argv[2]), Path(sys.argv[3]))
