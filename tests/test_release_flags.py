"""Helm's release flags in the spec: each reaches exactly the helm commands that take it, under the
name each helm major gives it; the defaults are inherited, the release wins; bad values are file:line
errors."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import pytest

from deployer import releaseflags
from deployer.releaseflags import ReleaseFlags
from testing.cli import run, tree_state
from testing.tools import helm_binary

EVERYTHING = ReleaseFlags(
    create_namespace=True,
    wait_for_jobs=True,
    cleanup_on_fail=True,
    history_max=3,
    force=True,
    disable_hooks=True,
    skip_schema_validation=True,
    take_ownership=True,
)


@functools.cache
def helm_help(major: int, verb: str) -> str:
    return subprocess.run(
        [str(helm_binary(major)), verb, "--help"], check=True, capture_output=True, text=True
    ).stdout


def options(args: list[str]) -> list[str]:
    return [a.split("=", 1)[0] for a in args if a.startswith("--")]


@pytest.mark.parametrize("major", [3, 4])
def test_every_flag_deployer_passes_is_one_the_helm_verb_accepts(major: int) -> None:
    passed = {
        "upgrade": releaseflags.upgrade_args(EVERYTHING, major, wait=True),
        "rollback": releaseflags.rollback_args(EVERYTHING, major),
        "uninstall": releaseflags.uninstall_args(EVERYTHING),
        "template": releaseflags.template_args(EVERYTHING),
    }
    for verb, args in passed.items():
        for flag in options(args):
            assert f"      {flag} " in helm_help(major, verb), f"helm {major} {verb} has no {flag}"
    # helm 4 renamed --force (kept as a deprecated alias that warns): the new name only
    assert "--force-replace" in passed["upgrade"] if major == 4 else "--force" in passed["upgrade"]


def test_flags_off_add_nothing_but_create_namespace_which_is_on_by_default() -> None:
    assert releaseflags.upgrade_args(ReleaseFlags(), 3, wait=True) == ["--create-namespace"]
    assert releaseflags.upgrade_args(ReleaseFlags(create_namespace=False), 4, wait=True) == []
    assert releaseflags.rollback_args(ReleaseFlags(), 4) == []
    assert releaseflags.template_args(ReleaseFlags()) == []


def test_wait_for_jobs_is_only_passed_with_wait() -> None:
    flags = ReleaseFlags(wait_for_jobs=True)
    assert "--wait-for-jobs" in releaseflags.upgrade_args(flags, 3, wait=True)
    assert "--wait-for-jobs" not in releaseflags.upgrade_args(flags, 3, wait=False)


SPEC = """\
defaults:
  namespace: shop
  historyMax: 5
  force: true
  takeOwnership: true
environments:
  dev: {}
releases:
  - name: api
    chart: ./chart
    force: false
    disableHooks: true
  - name: web
    chart: ./chart
    needs: [api]
"""


def project(tmp_path: Path, spec: str) -> Path:
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: chart\nversion: 1.0.0\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n"
    )
    (tmp_path / "deployer.yaml").write_text(spec)
    return tmp_path


def test_a_release_takes_the_defaults_flags_and_its_own_win(tmp_path: Path) -> None:
    from deployer.desired import resolve
    from deployer.project import load_project

    loaded = load_project(project(tmp_path, SPEC) / "deployer.yaml", {})
    api, web = resolve(loaded, "dev")
    assert api.flags == ReleaseFlags(history_max=5, force=False, take_ownership=True, disable_hooks=True)
    assert web.flags == ReleaseFlags(history_max=5, force=True, take_ownership=True)


def test_a_plan_says_how_helm_will_apply_a_changing_release(tmp_path: Path, helm: Path) -> None:
    root = project(tmp_path, SPEC)
    # An offline plan against a base commit where the environment did not exist: both releases
    # install, and say how.
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    (root / "deployer.yaml").write_text("environments:\n  other: {}\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "."], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "base"], cwd=root, check=True)
    (root / "deployer.yaml").write_text(SPEC)
    result = run(["diff", "-e", "dev", "--base", "HEAD"], root, {"DEPLOYER_HELM": str(helm)})
    assert result.code == 0, result.err
    api = result.out.split("shop/api", 1)[1].split("shop/web", 1)[0]
    assert "disableHooks: helm will not run this chart's hooks" in api
    assert "takeOwnership: helm adopts objects" in api
    assert "force:" not in api
    web = result.out.split("shop/web", 1)[1]
    assert "force: objects whose change the server refuses are deleted and recreated" in web
    assert "disableHooks" not in web
    for output in ("markdown", "json"):
        other = run(
            ["diff", "-e", "dev", "--base", "HEAD", "--output", output], root, {"DEPLOYER_HELM": str(helm)}
        )
        assert "disableHooks: helm will not run this chart's hooks" in other.out, output
        assert "takeOwnership: helm adopts objects" in other.out, output


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("    historyMax: -1\n", "deployer.yaml:12:17"),
        ("    cleanupOnFail: sometimes\n", "deployer.yaml:12:20"),
        ("    takeOwnerShip: true\n", "deployer.yaml:12:5"),
    ],
)
def test_a_bad_flag_is_a_file_line_error_that_touches_nothing(
    tmp_path: Path, line: str, message: str
) -> None:
    root = project(tmp_path, SPEC.replace("    disableHooks: true\n", line))
    before = tree_state(root)
    result = run(["validate"], root)
    assert result.code == 1
    assert message in result.err, result.err
    assert "Traceback" not in result.err
    assert tree_state(root) == before


def test_the_flags_are_in_the_editor_schema() -> None:
    import json

    schema = json.loads(run(["schema", "spec"], Path(__file__).parent).out)
    text = json.dumps(schema)
    for key in releaseflags.FIELDS:
        assert f'"{key}"' in text, key
