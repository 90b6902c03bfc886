"""`deployer diff` against the sandbox: no noise, exact changes, every action, secrets never shown."""

from __future__ import annotations

import base64
import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from testing.chartrepo import make_chart
from testing.cluster_run import Deployer
from testing.example import copy_example
from testing.fakes import RecordingHelm


@pytest.fixture
def deployer(tmp_path: Path, namespace: str, helm: Path, kubeconfig: Path, cache: Path) -> Deployer:
    project = copy_example(tmp_path / "gitops", namespace=namespace, env_suffix=f"-{namespace[-8:]}")
    return Deployer(project, helm, kubeconfig, cache)


def env(namespace: str, name: str = "dev") -> str:
    return f"{name}-{namespace[-8:]}"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def changed_lines(diff: str) -> list[str]:
    return [x for x in diff.splitlines() if x[:1] in "+-" and x[:3] not in ("+++", "---")]


def test_after_apply_the_same_spec_shows_no_changes(deployer: Deployer, namespace: str) -> None:
    e = env(namespace)
    applied = deployer("apply", "-e", e)
    assert applied.code == 0, applied.err
    result = deployer("diff", "-e", e, "--detailed-exitcode")
    assert result.code == 0, result.err
    assert result.out == f"No changes: 3 release(s) in {e} are up to date.\n"


def test_one_overlay_value_shows_exactly_that_field_and_where_it_came_from(
    deployer: Deployer, namespace: str
) -> None:
    e = env(namespace)
    assert deployer("apply", "-e", e).code == 0
    edit(deployer.project / "environments" / e / "values.yaml", "api:\n", "api:\n  replicaCount: 2\n")
    result = deployer("diff", "-e", e, "--output", "json", "--detailed-exitcode")
    assert result.code == 2, result.err
    doc = json.loads(result.out)
    changed = [r for r in doc["releases"] if r["action"] != "noop"]
    assert [r["key"] for r in changed] == [f"{namespace}/api"]
    [resource] = changed[0]["resources"]
    assert (resource["kind"], resource["namespace"], resource["name"]) == ("Deployment", namespace, "api")
    assert changed_lines(resource["diff"]) == ["-  replicas: 1", "+  replicas: 2"]
    assert changed[0]["values"] == [
        {
            "path": "replicaCount",
            "change": "changed",
            "before": 1,
            "after": 2,
            "source": f"environments/{e}/values.yaml:5:17",
        }
    ]


def test_chart_bump_added_and_removed_resources_uninstall_and_prune(
    deployer: Deployer, namespace: str
) -> None:
    e = env(namespace)
    assert deployer("apply", "-e", e).code == 0
    charts = deployer.project / "charts"
    spec = deployer.project / "deployer.yaml"
    # The worker moves from the repository's 0.3.0 (version ~0.3) to its source, bumped to 0.4.0.
    local = re.sub(r"chart: shop/worker\n    version: [^\n]*\n", "chart: ./charts/worker\n", spec.read_text())
    spec.write_text(local)
    edit(charts / "worker" / "Chart.yaml", "version: 0.3.0", "version: 0.4.0")
    (charts / "worker" / "templates" / "pdb.yaml").write_text(
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: worker}\n"
        "spec: {minAvailable: 1, selector: {matchLabels: {app.kubernetes.io/name: worker}}}\n"
    )
    (charts / "web" / "templates" / "service.yaml").unlink()
    edit(spec, f"  {e}: {{}}", f"  {e}:\n    releases:\n      platform-config: {{installed: false}}")
    result = deployer("diff", "-e", e, "--output", "json")
    assert result.code == 0, result.err
    by_key = {r["key"]: r for r in json.loads(result.out)["releases"]}
    worker = by_key[f"{namespace}/worker"]
    assert worker["action"] == "upgrade"
    assert worker["versionBefore"] == "0.3.0" and worker["versionAfter"] == "0.4.0"
    assert {(r["kind"], r["change"]) for r in worker["resources"]} >= {("PodDisruptionBudget", "added")}
    api = by_key[f"{namespace}/api"]
    assert [(r["kind"], r["change"]) for r in api["resources"]] == [("Service", "removed")]
    assert by_key[f"{namespace}/platform-config"]["action"] == "uninstall"

    # A release removed from the spec is proposed for pruning (it carries this environment's label).
    text = spec.read_text()
    spec.write_text(text[: text.index("  - name: worker")])
    pruned = deployer("diff", "-e", e)
    assert pruned.code == 0, pruned.err
    assert f"- {namespace}/worker  prune  worker 0.3.0" in pruned.out
    # The project is the directory's name: the plan says so, since another spec in a directory of
    # that name would deploy as the same project and prune these releases.
    assert "labelled deployer-project=gitops, a name taken from the spec's directory" in pruned.out
    spec.write_text("project: gitops\n" + spec.read_text())
    named = deployer("diff", "-e", e)
    assert f"- {namespace}/worker  prune  worker 0.3.0" in named.out, named.out + named.err
    assert "taken from the spec's directory" not in named.out


def test_a_release_stuck_in_pending_upgrade_is_blocked(deployer: Deployer, namespace: str) -> None:
    e = env(namespace)
    assert deployer("apply", "-e", e).code == 0
    chart = deployer.project / "charts" / "web"
    # An upgrade whose pods can never be scheduled waits; killing helm then leaves it pending-upgrade.
    proc = subprocess.Popen(
        [
            str(deployer.helm),
            "upgrade",
            "api",
            str(chart),
            "--namespace",
            namespace,
            "--reuse-values",
            "--set",
            "nodeSelector.disk=none",
            "--timeout",
            "120s",
            "--kubeconfig",
            str(deployer.kubeconfig),
            "--wait" if "v3" in deployer.helm.parent.name else "--wait=watcher",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while deployer.history("api", namespace)[-1]["status"] != "pending-upgrade":
        assert time.monotonic() < deadline, "helm never reached pending-upgrade"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    result = deployer("diff", "-e", e, "--detailed-exitcode")
    assert result.code == 2
    assert (
        f"! {namespace}/api  blocked  web 1.2.0  "
        "(revision 2 is pending-upgrade; run `deployer apply --recover`)" in result.out
    )


def test_a_canary_secret_appears_in_no_output_log_or_helm_argv(
    deployer: Deployer, namespace: str, tmp_path: Path
) -> None:
    e = env(namespace)
    canary = "canary-s3cr3t-9d2f"  # in the api Secret and in the sensitive values path secret.apiKey
    recorder = RecordingHelm(deployer.helm, tmp_path / "recorder")
    debug = {"DEPLOYER_HELM": str(recorder.path), "DEPLOYER_DEBUG": "1"}
    assert deployer("apply", "-e", e, env={**debug, "API_KEY": "first-value"}).code == 0
    outputs = []
    for fmt in ("text", "markdown", "json"):
        result = deployer("diff", "-e", e, "--output", fmt, "--live", env={**debug, "API_KEY": canary})
        assert result.code == 0, result.err
        assert "debug: deployer.kube: kubernetes GET " in result.err
        assert "API_KEY: '<redacted: 18 bytes, changed>'" in result.out or fmt == "json"
        outputs.append(result.out + result.err)
    applied = deployer("apply", "-e", e, "--output", "json", env={**debug, "API_KEY": canary})
    assert applied.code == 0, applied.err
    outputs.append(applied.out + applied.err)
    values = deployer("values", "-e", e, "api", "--explain", env={**debug, "API_KEY": canary})
    outputs.append(values.out + values.err)
    assert "debug: deployer.helm: helm upgrade --install api " in applied.err
    argv = [arg for call in recorder.calls() for arg in call]
    for text in [*outputs, *argv]:
        assert canary not in text
        assert "Y2FuYXJ5" not in text  # base64 of the canary's start


def test_observed_state_costs_the_same_api_requests_for_1_and_20_releases(
    deployer: Deployer, namespace: str, tmp_path: Path
) -> None:
    e = env(namespace)
    chart = make_chart(tmp_path / "charts", "hello", "1.0.0")
    counts = []
    for wanted in (1, 20):
        spec = deployer.project / "deployer.yaml"
        releases = "".join(f"  - name: hello-{i}\n    chart: {chart}\n" for i in range(wanted))
        text = spec.read_text()
        spec.write_text(text[: text.index("releases:")] + "releases:\n" + releases)
        (deployer.project / "environments" / e / "values.yaml").write_text("{}\n")
        for i in range(wanted):
            deployer.helm_cmd("upgrade", "--install", f"hello-{i}", str(chart), "--namespace", namespace)
        result = deployer("diff", "-e", e)
        assert result.code == 0, result.err
        match = re.search(r"observed (\d+) helm release\(s\) in (\d+) API request\(s\)", result.err)
        assert match, result.err
        assert int(match[1]) >= wanted
        counts.append(int(match[2]))
    assert counts[0] == counts[1] == 1


def test_live_shows_a_manual_scale_that_the_stored_manifest_cannot(
    deployer: Deployer, namespace: str, kubeconfig: Path
) -> None:
    e = env(namespace)
    assert deployer("apply", "-e", e).code == 0
    assert deployer("diff", "-e", e, "--live", "--detailed-exitcode").code == 0
    subprocess.run(
        [
            "kubectl",
            "--kubeconfig",
            str(kubeconfig),
            "-n",
            namespace,
            "scale",
            "deployment/api",
            "--replicas=4",
        ],
        check=True,
        capture_output=True,
    )
    assert deployer("diff", "-e", e, "--detailed-exitcode").code == 0  # the stored manifest did not change
    result = deployer("diff", "-e", e, "--live", "--output", "json", "--detailed-exitcode")
    assert result.code == 2, result.err
    [api] = [r for r in json.loads(result.out)["releases"] if r["action"] != "noop"]
    assert api["key"] == f"{namespace}/api"
    assert api["reasons"] == ["1 resource(s) drifted from the deployed revision"]
    [drift] = api["drift"]
    assert (drift["kind"], drift["name"], drift["change"]) == ("Deployment", "api", "drifted")
    assert changed_lines(drift["diff"]) == ["-  replicas: 4", "+  replicas: 1"]


def test_live_names_an_object_the_install_would_create_that_another_release_owns(
    deployer: Deployer, namespace: str
) -> None:
    """Two releases of a chart with a fixed object name (as ingress-nginx's IngressClass `nginx`):
    the plan says install, and only the live objects say that helm will refuse it."""
    e = env(namespace)
    assert deployer("apply", "-e", e).code == 0
    edit(
        deployer.project / "deployer.yaml",
        "  - name: api\n",
        "  - name: config-copy\n    chart: ./charts/platform-config\n\n  - name: api\n",
    )
    note = (
        f"ConfigMap {namespace}/platform-config already exists in the cluster and belongs to release "
        f"{namespace}/platform-config: helm will refuse to install {namespace}/config-copy"
    )
    plain = deployer("diff", "-e", e)
    assert plain.code == 0, plain.err
    assert f"+ {namespace}/config-copy  install" in plain.out and note not in plain.out
    live = deployer("diff", "-e", e, "--live", "--output", "json")
    assert live.code == 0, live.err
    [copy] = [r for r in json.loads(live.out)["releases"] if r["action"] != "noop"]
    assert copy["key"] == f"{namespace}/config-copy"
    [found] = copy["releaseNotes"]
    assert found.startswith(note), found
    # ... and names the setting that resolves it.
    assert found.endswith(
        "`takeOwnership: true` on the release makes helm adopt it (helm >= 3.17 `--take-ownership`), "
        "taking it from that release"
    ), found
    assert "checked 1 object(s) the plan creates for an existing owner" in live.err
    # The note tells the truth: helm refuses, and the owner's object is untouched.
    applied = deployer("apply", "-e", e)
    assert applied.code == 1
    assert "exists and cannot be imported into the current release" in applied.out + applied.err
    assert deployer.revision("platform-config", namespace) == 1


def test_without_a_cluster_wide_secret_list_it_reads_each_namespace(
    deployer: Deployer, namespace: str, kubeconfig: Path, tmp_path: Path
) -> None:
    e = env(namespace)
    assert deployer("apply", "-e", e).code == 0
    kubectl = ["kubectl", "--kubeconfig", str(kubeconfig), "-n", namespace]
    subprocess.run([*kubectl, "create", "serviceaccount", "ci"], check=True, capture_output=True)
    subprocess.run(
        [*kubectl, "create", "role", "read-secrets", "--verb=get,list", "--resource=secrets"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [*kubectl, "create", "rolebinding", "ci", "--role=read-secrets", f"--serviceaccount={namespace}:ci"],
        check=True,
        capture_output=True,
    )
    token = subprocess.run(
        [*kubectl, "create", "token", "ci"], check=True, capture_output=True, text=True
    ).stdout.strip()
    config = yaml.safe_load(kubeconfig.read_text())
    config["users"] = [{"name": "ci", "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = "ci"
    limited = tmp_path / "limited-kubeconfig"
    limited.write_text(yaml.safe_dump(config))

    result = deployer("diff", "-e", e, "--detailed-exitcode", env={"KUBECONFIG": str(limited)})
    assert result.code == 0, result.err
    assert (
        "in 2 API request(s) (per-namespace lists: cluster-wide list forbidden)" in result.err
    )  # one forbidden, one namespace
    # Nothing to change, but what was not checked is said, in text and in the PR comment.
    assert result.out == (
        f"No changes: 3 release(s) in {e} are up to date.\n"
        "Note: cluster-wide Secret list forbidden: releases outside the spec's namespaces were not checked\n"
    )
    comment = deployer("diff", "-e", e, "--output", "markdown", env={"KUBECONFIG": str(limited)})
    assert "> **Note:** cluster-wide Secret list forbidden: releases outside" in comment.out, comment.out


def test_a_release_record_no_helm_wrote_is_left_out_and_said_by_diff_and_apply(
    deployer: Deployer, namespace: str, kubeconfig: Path
) -> None:
    """Another tool's Secret labelled owner=helm must not stop the plan, and must not be skipped
    silently either: diff and apply (with nothing else to do) both say it was left out."""
    e = env(namespace)
    assert deployer("apply", "-e", e).code == 0
    name = "sh.helm.release.v1.stray.v1"
    stray = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"owner": "helm", "name": "stray", "version": "1", "status": "deployed"},
        },
        "data": {"release": base64.b64encode(b"not a helm release").decode()},
    }
    kubectl = ["kubectl", "--kubeconfig", str(kubeconfig)]
    subprocess.run(
        [*kubectl, "apply", "-f", "-"], input=json.dumps(stray), text=True, check=True, capture_output=True
    )
    try:
        note = f"Note: helm release record {namespace}/stray (revision 1: "
        diffed = deployer("diff", "-e", e, "--detailed-exitcode")
        assert diffed.code == 0, diffed.err
        assert diffed.out.startswith(f"No changes: 3 release(s) in {e} are up to date.\n"), diffed.out
        assert note in diffed.out, diffed.out
        assert "cannot be read (not written by helm): left out of the plan" in diffed.out
        applied = deployer("apply", "-e", e)
        assert applied.code == 0, applied.err
        assert applied.out == f"No changes: 3 release(s) in {e} are up to date.\n"
        assert f"note: helm release record {namespace}/stray (revision 1: " in applied.err, applied.err
    finally:  # the cluster-wide list would show it to the tests that follow
        subprocess.run(
            [*kubectl, "-n", namespace, "delete", "secret", name, "--wait"],
            check=True,
            capture_output=True,
        )
