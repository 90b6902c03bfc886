"""helm's release flags from the spec do what helm does with them, on both majors, and a release with
every flag set still converges (apply; diff exits 0; apply again makes no revision)."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

from testing.cluster_run import Deployer

CHART = Path(__file__).resolve().parent.parent / "data" / "charts" / "flags" / "strict"


def kubectl(kubeconfig: Path, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), *argv], check=check, capture_output=True, text=True
    )


def make(tmp_path: Path, namespace: str, release_lines: str) -> Path:
    root = tmp_path / "gitops"
    shutil.copytree(CHART, root / "charts" / "strict")
    (root / "deployer.yaml").write_text(
        textwrap.dedent(
            f"""\
            project: flags-{namespace[-8:]}
            defaults:
              namespace: {namespace}
              timeout: 120
              historyMax: 2
              createNamespace: false
            environments:
              flags: {{}}
            releases:
              - name: app
                chart: ./charts/strict
            """
        )
        + release_lines
    )
    return root


def test_every_flag_set_reaches_helm_and_the_release_converges(
    tmp_path: Path, namespace: str, helm: Path, kubeconfig: Path, cache: Path
) -> None:
    # An object of the release's name that nobody labelled: helm refuses it unless takeOwnership.
    kubectl(kubeconfig, "create", "configmap", "app-config", "-n", namespace, "--from-literal=message=old")
    root = make(
        tmp_path,
        namespace,
        "    disableHooks: true\n"
        "    takeOwnership: true\n"
        "    skipSchemaValidation: true\n"
        "    force: true\n"
        "    cleanupOnFail: true\n"
        "    waitForJobs: true\n"
        "    values:\n"
        "      - {replicas: three}\n"  # the chart's schema wants an integer
        "      - values/app.yaml\n",
    )
    # Every field issue 18 added, together: the release moves to an included file, and its message
    # comes from an environment variable of the spec.
    spec = (root / "deployer.yaml").read_text()
    head, release = spec.split("releases:\n")
    (root / "teams").mkdir()
    (root / "teams" / "app.yaml").write_text("releases:\n" + release)
    (root / "deployer.yaml").write_text(
        head.replace("  flags: {}\n", "  flags:\n    vars: {greeting: hello from flags}\n")
        + "include: [teams/app.yaml]\n"
    )
    (root / "values").mkdir()
    (root / "values" / "app.yaml").write_text('message: !var "${greeting}!"\n')
    deployer = Deployer(root, helm, kubeconfig, cache)
    explained = deployer("values", "-e", "flags", "app", "--explain")
    assert 'message = "hello from flags!"    # values/app.yaml:1:10 (var greeting from deployer.yaml:' in (
        explained.out
    ), explained.out + explained.err

    diff = deployer("diff", "-e", "flags")
    assert diff.code == 0, diff.err
    assert "disableHooks: helm will not run this chart's hooks" in diff.out
    assert "takeOwnership: helm adopts objects" in diff.out
    live = deployer("diff", "-e", "flags", "--live")
    assert "ConfigMap " + namespace + "/app-config already exists" in live.out, live.out
    assert "helm will take it over (takeOwnership)" in live.out

    applied = deployer("apply", "-e", "flags")
    assert applied.code == 0, applied.out + applied.err
    adopted = kubectl(kubeconfig, "get", "configmap", "app-config", "-n", namespace, "-o", "yaml").stdout
    assert "meta.helm.sh/release-name: app" in adopted
    assert "replicas: three" in adopted
    assert "message: hello from flags!" in adopted
    hook = kubectl(kubeconfig, "get", "configmap", "app-hook", "-n", namespace, check=False)
    assert hook.returncode != 0 and "NotFound" in hook.stderr  # disableHooks: the hook never ran

    for output in ("text", "markdown", "json"):
        assert deployer("diff", "-e", "flags", "--detailed-exitcode", "--output", output).code == 0
    again = deployer("apply", "-e", "flags")
    assert again.out == "No changes: 1 release(s) in flags are up to date.\n", again.out + again.err
    assert deployer.revision("app", namespace) == 1

    # historyMax: 2 keeps two revisions however many upgrades there are
    team_file = root / "teams" / "app.yaml"
    original = team_file.read_text()
    for word in ("four", "five", "six"):
        team_file.write_text(original.replace("{replicas: three}", f"{{replicas: {word}}}"))
        result = deployer("apply", "-e", "flags")
        assert result.code == 0, result.out + result.err
        assert "upgrade\tsucceeded" in result.out, result.out + result.err
    assert [h["revision"] for h in deployer.history("app", namespace)] == [3, 4]


def test_without_the_flags_helm_refuses_what_they_allowed(
    tmp_path: Path, namespace: str, helm: Path, kubeconfig: Path, cache: Path
) -> None:
    kubectl(kubeconfig, "create", "configmap", "app-config", "-n", namespace, "--from-literal=message=old")
    deployer = Deployer(
        make(tmp_path, namespace, "    values:\n      - {replicas: three}\n"), helm, kubeconfig, cache
    )
    schema = deployer("diff", "-e", "flags")
    assert schema.code == 1
    assert "replicas" in schema.err and "integer" in schema.err, schema.err

    deployer = Deployer(make(tmp_path / "second", namespace, ""), helm, kubeconfig, cache)
    refused = deployer("apply", "-e", "flags")
    assert refused.code == 1
    assert "app-config" in refused.out + refused.err
    assert "exists and cannot be imported" in refused.out + refused.err


def test_create_namespace_false_leaves_a_missing_namespace_missing(
    tmp_path: Path, namespace: str, helm: Path, kubeconfig: Path, cache: Path
) -> None:
    missing = "absent-" + namespace[-8:]
    root = make(tmp_path, namespace, f"    namespace: {missing}\n")
    deployer = Deployer(root, helm, kubeconfig, cache)
    diff = deployer("diff", "-e", "flags")
    assert "createNamespace: false: the release's namespace must exist" in diff.out, diff.out
    failed = deployer("apply", "-e", "flags")
    assert failed.code == 1
    assert missing in failed.out + failed.err
    assert kubectl(kubeconfig, "get", "namespace", missing, check=False).returncode != 0
