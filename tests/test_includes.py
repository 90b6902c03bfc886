"""A spec in several files: deployer.yaml's `include:` merges each team's releases, errors name the
included file's line, duplicates across files are refused, and `diff --base` reads the included files
as of the base commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from testing.cli import run, tree_state

SPEC = """\
include:
  - teams/*.yaml
defaults:
  namespace: shop
environments:
  dev: {}
releases:
  - name: platform
    chart: ./chart
"""

PAYMENTS = """\
# owned by the payments team (CODEOWNERS)
releases:
  - name: payments
    chart: ./chart
    values:
      - {replicaCount: 1}
"""

SEARCH = """\
repositories:
  - name: search-charts
    url: https://charts.example.com/search
releases:
  - name: search
    chart: ./chart
    needs: [payments]
"""


def project(tmp_path: Path, files: dict[str, str] | None = None) -> Path:
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: chart\nversion: 1.0.0\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n"
        "data:\n  replicas: {{ .Values.replicaCount | default 0 | quote }}\n"
    )
    (tmp_path / "teams").mkdir()
    contents = {"deployer.yaml": SPEC, "teams/payments.yaml": PAYMENTS, "teams/search.yaml": SEARCH}
    contents.update(files or {})
    for name, text in contents.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_releases_of_every_included_file_are_one_project(tmp_path: Path) -> None:
    root = project(tmp_path)
    result = run(["validate"], root)
    assert result.code == 0, result.err
    assert result.out == "deployer.yaml: ok (3 releases in 3 files; checked dev)\n"
    values = run(["values", "-e", "dev", "payments"], root)
    assert values.out == "replicaCount: 1\n"


def test_an_error_in_an_included_file_names_that_file_and_line(tmp_path: Path) -> None:
    root = project(tmp_path, {"teams/payments.yaml": PAYMENTS.replace("./chart", "./charts/payments")})
    before = tree_state(root)
    result = run(["validate"], root)
    assert result.code == 1
    assert "teams/payments.yaml:4:12: local chart charts/payments does not exist" in result.err, result.err
    assert tree_state(root) == before


def test_a_need_on_a_release_of_another_file_that_does_not_exist_names_the_right_file(tmp_path: Path) -> None:
    root = project(tmp_path, {"teams/search.yaml": SEARCH.replace("needs: [payments]", "needs: [paymnts]")})
    result = run(["validate"], root)
    assert result.code == 1
    assert "teams/search.yaml:7:13: release 'search' needs 'paymnts'" in result.err, result.err
    assert "did you mean 'payments'?" in result.err


def test_a_release_defined_in_two_files_is_refused_naming_both(tmp_path: Path) -> None:
    root = project(tmp_path, {"teams/search.yaml": SEARCH.replace("name: search\n", "name: payments\n")})
    result = run(["validate"], root)
    assert result.code == 1
    assert (
        "teams/search.yaml:5:11: duplicate release 'shop/payments' "
        "(first defined at teams/payments.yaml:3:11)" in result.err
    ), result.err


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"deployer.yaml": SPEC.replace("teams/*.yaml", "team/*.yaml")},
            "deployer.yaml:2:5: include 'team/*.yaml' matches no file",
        ),
        (
            {"teams/search.yaml": "include: [other.yaml]\n" + SEARCH},
            "teams/search.yaml:1:1: 'include' is not allowed in an included file",
        ),
        (
            {"teams/search.yaml": "environments: {prod: {}}\n" + SEARCH},
            "teams/search.yaml:1:1: 'environments' is not allowed in an included file",
        ),
        (
            {"teams/search.yaml": "releases: {name: search}\n"},
            "teams/search.yaml:1:11: 'releases' must be a list",
        ),
    ],
)
def test_bad_includes_are_file_line_errors(tmp_path: Path, files: dict[str, str], message: str) -> None:
    root = project(tmp_path, files)
    result = run(["validate"], root)
    assert result.code == 1
    assert message in result.err, result.err
    assert "Traceback" not in result.err


def test_diff_base_reads_the_included_files_as_of_the_base_commit(tmp_path: Path, helm: Path) -> None:
    root = project(tmp_path)
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "."], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "base"], cwd=root, check=True)
    (root / "teams" / "payments.yaml").write_text(PAYMENTS.replace("replicaCount: 1", "replicaCount: 2"))
    result = run(["diff", "-e", "dev", "--base", "HEAD"], root, {"DEPLOYER_HELM": str(helm)})
    assert result.code == 0, result.err
    assert "~ shop/payments  upgrade" in result.out
    assert "~ replicaCount: 1 -> 2    (teams/payments.yaml:6:24)" in result.out, result.out
    assert "shop/search" not in result.out.split("Plan:")[0].split("Apply order")[0].replace(
        "shop/search  no change", ""
    )
