"""Saved plan files refused before anything runs: not a plan, another format version, edited, for
another project or environment or cluster, too old; and what `apply --plan` says moved. No cluster:
every refusal here comes before the first API request (the kubeconfig's server does not exist)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deployer import __version__
from deployer.errors import UsageError
from deployer.observed import ObservedRelease, Status
from deployer.planfile import Header, build, check_header, moved, new_salt, parse_duration, read, write
from testing.cli import Result, run
from testing.example import copy_example
from testing.tools import helm_binary

KUBECONFIG = Path(__file__).resolve().parent / "data" / "kubeconfig" / "two-files" / "team" / "config"
SERVER = "https://team.example.com:6443"


def header(**changes: Any) -> Header:
    fields: dict[str, Any] = {
        "project": "gitops",
        "environment": "dev",
        "spec_commit": "0123456789ab",
        "deployer_version": __version__,
        "helm_version": "v3.22.0",
        "kube_context": "team",
        "kube_server": SERVER,
        "live": False,
        "selectors": [],
    }
    return Header(**{**fields, **changes})


def record(key: str, action: str = "upgrade", revision: int | None = 3, **changes: Any) -> dict[str, Any]:
    return {
        "key": key,
        "action": action,
        "chart": {"name": "web", "version": "1.2.0", "ref": "./charts/web", "digest": "d1"},
        "observed": None if revision is None else {"revision": revision, "status": "deployed"},
        "valuesDigest": "hmac-sha256:v1",
        "manifestDigest": "hmac-sha256:m1",
        "settings": {"timeout": 300, "wait": True, "atomic": False, "force": False},
        "hooksDigest": "hmac-sha256:h1",
        **changes,
    }


def plan_file(tmp_path: Path, *, now: datetime | None = None, **changes: Any) -> Path:
    salt = new_salt()
    records = {"shop/api": record("shop/api")}
    path = tmp_path / "plan.json"
    write(path, build(header(**changes), records, salt, now or datetime.now(UTC)))
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "gitops")


def apply(project: Path, *argv: str) -> Result:
    env = {"KUBECONFIG": str(KUBECONFIG), "DEPLOYER_HELM": str(helm_binary(3))}
    return run(["apply", "-e", "dev", *argv], project, env)


def test_a_file_that_is_not_json_names_the_line_and_touches_nothing(project: Path, tmp_path: Path) -> None:
    bad = tmp_path / "plan.json"
    bad.write_text("{\n  oops\n")
    result = apply(project, "--plan", str(bad))
    assert result.code == 1
    assert result.err.startswith(f"error: {bad}:2:3: not a deployer plan file: invalid JSON (")
    assert "Traceback" not in result.err


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (
            '{"schemaVersion": 1, "releases": []}',
            'is not a deployer plan file (no "format": "deployer-plan")',
        ),
        ("[1, 2]", 'is not a deployer plan file (no "format": "deployer-plan")'),
        (
            '{"format": "deployer-plan", "formatVersion": 1}',
            "is a plan file of format version 1; this deployer reads version 2",
        ),
    ],
)
def test_a_file_of_another_kind_or_version_is_refused(
    project: Path, tmp_path: Path, content: str, says: str
) -> None:
    path = tmp_path / "plan.json"
    path.write_text(content)
    result = apply(project, "--plan", str(path))
    assert result.code == 1
    assert result.err.startswith(f"error: {path} {says}"), result.err


def test_an_edited_plan_is_refused(project: Path, tmp_path: Path) -> None:
    path = plan_file(tmp_path)
    doc = json.loads(path.read_text())
    doc["releases"][0]["observed"]["revision"] = 4  # a hand edit to make a stale plan pass
    path.write_text(json.dumps(doc, indent=2))
    result = apply(project, "--plan", str(path))
    assert result.code == 1
    assert result.err.splitlines()[0] == (
        f"error: {path} was changed after deployer wrote it (its digest does not match its content)"
    )


def test_a_plan_for_another_environment_is_refused(project: Path, tmp_path: Path) -> None:
    path = plan_file(tmp_path, environment="prod")
    result = apply(project, "--plan", str(path))
    assert result.code == 1
    assert result.err.splitlines()[0] == f"error: {path} is a plan for environment 'prod', not 'dev'"
    assert "apply it with -e prod" in result.err


def test_a_plan_for_another_project_is_refused(project: Path, tmp_path: Path) -> None:
    path = plan_file(tmp_path, project="billing")
    result = apply(project, "--plan", str(path))
    assert result.code == 1
    assert result.err.splitlines()[0] == f"error: {path} is a plan for project 'billing', not 'gitops'"


def test_a_plan_made_against_another_cluster_is_refused(project: Path, tmp_path: Path) -> None:
    path = plan_file(tmp_path, kube_server="https://prod.example.com:6443")
    result = apply(project, "--plan", str(path))
    assert result.code == 1
    assert result.err.splitlines()[0] == (
        f"error: {path} was planned against the cluster at https://prod.example.com:6443; this run "
        f"targets {SERVER}"
    )


def test_a_plan_older_than_the_max_age_is_refused(project: Path, tmp_path: Path) -> None:
    path = plan_file(tmp_path, now=datetime.now(UTC) - timedelta(days=8, hours=2))
    result = apply(project, "--plan", str(path))
    assert result.code == 1
    first = result.err.splitlines()[0]
    assert first.startswith(f"error: {path} was made 8d2h ago (")
    assert first.endswith("more than --plan-max-age 7d")
    assert "raise --plan-max-age" in result.err
    shorter = apply(project, "--plan", str(path), "--plan-max-age", "1d12h")
    assert "more than --plan-max-age 1d12h" in shorter.err


def test_a_plan_with_nothing_to_do_changes_nothing_and_reads_no_cluster(
    project: Path, tmp_path: Path
) -> None:
    path = tmp_path / "plan.json"
    write(path, build(header(), {"shop/api": record("shop/api", "noop")}, new_salt(), datetime.now(UTC)))
    result = apply(project, "--plan", str(path))
    assert result.code == 0, result.err
    assert result.out == f"No changes: the plan in {path} has nothing to do; nothing was changed.\n"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--plan-max-age", "a week"], "error: --plan-max-age 'a week' is not a duration"),
        (["--recover"], "error: --recover changes releases before planning, so no saved plan can match"),
    ],
)
def test_bad_plan_flags_are_usage_errors(project: Path, tmp_path: Path, argv: list[str], says: str) -> None:
    result = apply(project, "--plan", str(plan_file(tmp_path)), *argv)
    assert result.code == 1
    assert result.err.splitlines()[0] == says


def test_sync_does_not_take_a_plan(project: Path, tmp_path: Path) -> None:
    env = {"KUBECONFIG": str(KUBECONFIG), "DEPLOYER_HELM": str(helm_binary(3))}
    result = run(["sync", "-e", "dev", "--plan", str(plan_file(tmp_path))], project, env)
    assert result.code == 1
    assert result.err.splitlines()[0] == "error: sync upgrades every release: it does not apply a saved plan"


def test_save_plan_needs_the_cluster(project: Path, tmp_path: Path) -> None:
    result = run(["diff", "-e", "dev", "--base", "HEAD", "--save-plan", str(tmp_path / "p.json")], project)
    assert result.code == 1
    assert result.err.startswith("error: --save-plan records the cluster's revisions; it cannot be combined")


def test_check_header_accepts_a_fresh_plan_for_this_target(tmp_path: Path) -> None:
    saved = read(plan_file(tmp_path, selectors=["tier=backend"]))
    check_header(
        saved,
        project="gitops",
        environment="dev",
        server=SERVER,
        selectors=["tier=backend"],
        max_age=timedelta(days=7),
        now=datetime.now(UTC),
    )
    with pytest.raises(
        UsageError, match="was planned with -l tier=backend: apply it with the same selection"
    ):
        check_header(
            saved,
            project="gitops",
            environment="dev",
            server=SERVER,
            selectors=[],
            max_age=timedelta(days=7),
            now=datetime.now(UTC),
        )


def observed(revision: int, description: str) -> ObservedRelease:
    return ObservedRelease(
        name="api",
        namespace="shop",
        revision=revision,
        status=Status.DEPLOYED,
        chart="web",
        chart_version="1.2.0",
        values={},
        manifest="",
        labels={},
        description=description,
        deployed_at="2026-12-03T09:00:00Z",
        last_deployed_revision=revision,
    )


def test_what_moved_is_said_per_release(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    saved = {
        "shop/api": record("shop/api", revision=7),
        "shop/web": record("shop/web", "noop"),
        "shop/gone": record("shop/gone"),
    }
    write(path, build(header(), saved, new_salt(), datetime.now(UTC)))
    web_chart = {"name": "web", "version": "1.2.0", "ref": "./charts/web", "digest": "d2"}
    fresh = {
        "shop/api": record("shop/api", revision=8, valuesDigest="hmac-sha256:v2"),
        "shop/web": record("shop/web", "noop", chart=web_chart),
        "shop/new": record("shop/new", "install", revision=None),
    }
    lines = moved(
        read(path), fresh, {"shop/api": observed(8, "deployer run 20261203T090000Z-abc123 commit x")}
    )
    assert lines == [
        "shop/api: revision 7 is now 8 (applied at 2026-12-03T09:00:00Z by run 20261203T090000Z-abc123)",
        "shop/api: values differ",
        "shop/gone: release removed since the plan",
        "shop/new: release added since the plan",
        "shop/web: chart web 1.2.0 digest changed",
    ]
    by_hand = moved(read(path), {**fresh, "shop/api": record("shop/api", revision=8)}, {
        "shop/api": observed(8, "Upgrade complete")
    })  # fmt: skip
    assert by_hand[0] == (
        "shop/api: revision 7 is now 8 (applied at 2026-12-03T09:00:00Z outside deployer: Upgrade complete)"
    )


def test_an_unchanged_plan_has_nothing_that_moved(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    records = {"shop/api": record("shop/api")}
    write(path, build(header(), records, new_salt(), datetime.now(UTC)))
    assert moved(read(path), records, {}) == []


@pytest.mark.parametrize(
    ("text", "seconds"), [("90m", 5400), ("7d", 604800), ("1d12h", 129600), ("2w", 1209600)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


def test_a_manifest_that_moved_alone_is_said_and_never_beside_its_cause(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    write(path, build(header(), {"shop/api": record("shop/api")}, new_salt(), datetime.now(UTC)))
    alone = {"shop/api": record("shop/api", manifestDigest="hmac-sha256:m2")}
    assert moved(read(path), alone, {}) == [
        "shop/api: rendered manifest differs (same chart and values: the render depends on the cluster)"
    ]
    both = {"shop/api": record("shop/api", manifestDigest="hmac-sha256:m2", valuesDigest="hmac-sha256:v2")}
    assert moved(read(path), both, {}) == ["shop/api: values differ"]


def test_settings_and_hooks_that_moved_are_named_one_line_each(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    write(path, build(header(), {"shop/api": record("shop/api")}, new_salt(), datetime.now(UTC)))
    settings = {"timeout": 600, "wait": True, "atomic": True, "force": False}
    fresh = {"shop/api": record("shop/api", settings=settings, hooksDigest="hmac-sha256:h2")}
    assert moved(read(path), fresh, {}) == [
        "shop/api: settings changed: atomic false -> true, timeout 300 -> 600",
        "shop/api: its hooks changed (the commands apply runs around it)",
    ]


def test_save_plan_into_a_missing_directory_is_refused_before_planning(project: Path, tmp_path: Path) -> None:
    env = {"KUBECONFIG": str(KUBECONFIG), "DEPLOYER_HELM": str(helm_binary(3))}
    target = tmp_path / "missing" / "plan.json"
    result = run(["diff", "-e", "dev", "--save-plan", str(target)], project, env)
    assert result.code == 1
    assert result.err.splitlines()[0] == (
        f"error: cannot write the plan to {target}: {target.parent} is not a directory you can write to"
    )
    assert "rendering" not in result.err


def test_a_plan_with_nothing_to_do_reports_an_empty_run_in_json(project: Path, tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    write(path, build(header(), {"shop/api": record("shop/api", "noop")}, new_salt(), datetime.now(UTC)))
    result = apply(project, "--plan", str(path), "--output", "json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert (doc["ok"], doc["releases"], doc["environment"]) == (True, [], "dev")
