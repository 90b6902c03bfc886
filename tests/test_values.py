"""`deployer values` and `--explain` on the repository's own example and on small projects."""

from __future__ import annotations

import textwrap
from pathlib import Path

import yaml

from testing.cli import run

ROOT = Path(__file__).resolve().parent.parent


def write(root: Path, files: dict[str, str]) -> Path:
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body))
    return root


CHART = {
    "chart/Chart.yaml": "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
    "chart/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
}


def test_prod_overrides_replica_count_and_nulls_survive_the_merge() -> None:
    result = run(["values", "-e", "prod", "api"], ROOT, {"API_KEY": None})
    assert result.code == 0, result.err
    values = yaml.safe_load(result.out)
    assert values["replicaCount"] == 3
    assert values["config"] == {"logLevel": "warn", "featureFlags": {"newCheckout": False}}
    assert values["resources"] == {"limits": None}
    assert values["podAnnotations"] == {"team": "checkout"}


def test_explain_names_the_file_and_line_of_each_leaf_and_what_it_overrode() -> None:
    result = run(["values", "-e", "prod", "api", "--explain"], ROOT, {"API_KEY": None})
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    at = lines.index("replicaCount = 3    # environments/prod/values.yaml:6:17")
    assert lines[at + 1] == "    overrides 1    # values/api.yaml:1:15"
    assert 'podAnnotations.team = "checkout"    # deployer.yaml:35:32' in lines
    assert "resources.limits = null    # environments/prod/values.yaml:10:13" in lines
    assert '    overrides resources.limits.memory = "256Mi"    # values/api.yaml:7:20' in lines


def test_sensitive_values_are_masked_unless_asked(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            **CHART,
            "deployer.yaml": """\
        environments: {dev: {}}
        releases:
          - name: api
            chart: ./chart
            sensitive: [db.password]
            values:
              - db: {user: app, password: canary-hunter2}
              - db: {url: "postgres://app:canary-hunter2@db:5432/app"}
        """,
        },
    )
    for argv in (["values", "-e", "dev", "api"], ["values", "-e", "dev", "api", "--explain"]):
        result = run(argv, tmp_path)
        assert result.code == 0
        # Masked by path, and wherever its text appears under another path (as diff does).
        assert "canary-hunter2" not in result.out + result.err
        assert "<sensitive>" in result.out
        assert "postgres://app:<sensitive>@db:5432/app" in result.out
        assert "db.user" in result.out or "user: app" in result.out
    shown = run(["values", "-e", "dev", "api", "--show-secrets"], tmp_path)
    assert yaml.safe_load(shown.out)["db"]["password"] == "canary-hunter2"
    assert yaml.safe_load(shown.out)["db"]["url"] == "postgres://app:canary-hunter2@db:5432/app"


def test_command_line_set_is_the_highest_layer(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            **CHART,
            "deployer.yaml": """\
        environments: {dev: {}}
        releases: [{name: api, chart: ./chart, values: [{replicas: 1, image: {tag: a}}]}]
        """,
            "environments/dev/values.yaml": "api: {replicas: 2}\n",
        },
    )
    result = run(
        ["values", "-e", "dev", "api", "--set", "replicas=5", "--set", "image.tag=null", "--explain"],
        tmp_path,
    )
    assert result.code == 0, result.err
    assert "replicas = 5    # --set replicas" in result.out
    assert "    overrides 2    # environments/dev/values.yaml:1:17" in result.out
    assert "image.tag = null    # --set image.tag" in result.out


def test_overlay_files_listed_by_the_environment_apply_in_order(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            **CHART,
            "deployer.yaml": """\
        environments:
          prod: {values: [env/common.yaml, env/prod.yaml]}
        releases: [{name: api, chart: ./chart}]
        """,
            "env/common.yaml": "api: {a: common, b: common}\n",
            "env/prod.yaml": "api: {b: prod}\n",
            "environments/prod/values.yaml": "api: {a: ignored-when-files-are-listed}\n",
        },
    )
    result = run(["values", "-e", "prod", "api"], tmp_path)
    assert yaml.safe_load(result.out) == {"a": "common", "b": "prod"}


def test_interpolation_in_overlays_reads_the_environment(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            **CHART,
            "deployer.yaml": "environments: {dev: {}}\nreleases: [{name: api, chart: ./chart}]\n",
            "environments/dev/values.yaml": "api:\n  tag: '${TAG:-latest}'\n  replicas: ${REPLICAS}\n",
        },
    )
    result = run(["values", "-e", "dev", "api"], tmp_path, {"TAG": None, "REPLICAS": "4"})
    assert yaml.safe_load(result.out) == {"tag": "latest", "replicas": 4}


def test_validate_accepts_the_example_in_every_environment() -> None:
    result = run(["validate"], ROOT, {"API_KEY": None})
    assert result.code == 0, result.err
    assert result.out == "deployer.yaml: ok (3 releases; checked dev, prod, staging)\n"
