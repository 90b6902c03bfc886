"""`deployer import helmfile` carries over what deployer's spec can now say (issue 19, item 3):
helmfile's hooks as release hooks, its helm flags as the typed flags, unpinned and ranged chart
versions for `deployer lock`. Each written spec passes `deployer validate`, and nothing runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from testing.chartrepo import published
from testing.cli import Result, run, tree_state
from testing.helmfile import (
    assert_same_objects,
    deployer_template,
    helm_env,
    helmfile_template,
    project_with,
)

pytestmark = pytest.mark.helm

EVENTS = ["prepare", "preapply", "presync", "postsync", "preuninstall", "postuninstall", "cleanup"]


def imported(project: Path, state: str, helmfile: Path, helm: Path, tmp_path: Path) -> Result:
    return run(
        ["import", "helmfile", state, "--helmfile", str(helmfile), "--helm", str(helm)],
        project,
        helm_env(tmp_path),
    )


def spec_of(project: Path) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((project / "deployer.yaml").read_text())  # type: ignore[no-any-return]


# -------------------------------------------------------------------------------------------------
# helm's release flags

FLAGS_STATE = """\
helmDefaults:
  wait: true
  waitForJobs: true
  cleanupOnFail: true
  historyMax: 5
  force: true
  createNamespace: false
  skipCRDs: true
  devel: true
  verify: true
  recreatePods: true
  disableValidation: true
  skipDeps: true
environments:
  dev: {}
---
releases:
  - name: api
    namespace: NAMESPACE
    chart: ./charts/echo
    takeOwnership: true
    skipSchemaValidation: true
    disableValidationOnInstall: true
    disableOpenAPIValidation: true
    force: false
    historyMax: 0
  - name: worker
    namespace: apps
    chart: ./charts/echo
    createNamespace: true
    recreatePods: false
"""


@pytest.mark.parametrize("templated", [False, True], ids=["plain", "templated"])
def test_helmdefaults_and_release_flags_become_the_typed_flags(
    templated: bool, tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    """Shaped like the helmDefaults of real platform repositories; a templated file goes through
    helmfile build, which prints Go's zero values for unset keys (createNamespace: false is kept)."""
    name = "helmfile.yaml.gotmpl" if templated else "helmfile.yaml"
    namespace = "{{ .Environment.Name }}-apps" if templated else "dev-apps"
    project = project_with(tmp_path, {name: FLAGS_STATE.replace("NAMESPACE", namespace)})
    result = imported(project, name, helmfile, helm3, tmp_path)
    assert result.code == 0, result.err
    spec = spec_of(project)
    assert spec["defaults"] == {
        "wait": True,
        "createNamespace": False,
        "waitForJobs": True,
        "cleanupOnFail": True,
        "historyMax": 5,
        "force": True,
        "devel": True,
        "verify": True,
        "crds": "skip",
    }
    api, worker = spec["releases"]
    assert {k: api[k] for k in ("force", "historyMax", "skipSchemaValidation", "takeOwnership")} == {
        "force": False,
        "historyMax": 0,
        "skipSchemaValidation": True,
        "takeOwnership": True,
    }
    assert worker["createNamespace"] is True
    # Nothing of these is lost (helm 3 and 4 refuse --recreate-pods; deployer passes the other flag
    # itself): the import is complete, and they are notes, each with its file:line.
    losses, _, notes = result.err.partition("note(s)")
    assert losses.startswith("import: everything was carried over\n"), result.err
    for where, what, why in [
        (11, "helmDefaults.recreatePods", "helmfile passes --recreate-pods, which helm 3 and 4 refuse"),
        (24, "releases[api].disableOpenAPIValidation", "deployer passes --disable-openapi-validation itself"),
    ]:
        assert f"{name}:{where}: {what}: {why}" in notes
    # deployer already does what these ask: nothing to write, nothing reported.
    for quiet in ("skipDeps", "disableValidation", "disableValidationOnInstall", "recreatePods: false"):
        assert f".{quiet}:" not in result.err
    assert "worker].recreatePods" not in result.err
    checked = run(["validate"], project)
    assert checked.code == 0, checked.err


# -------------------------------------------------------------------------------------------------
# hooks


def hooks_state(marks: Path, *, templated: bool) -> str:
    """Release hooks for every event (a shell, a script, a command from PATH, template data in args)
    and a global prepare/cleanup pair, each writing a file under `marks` if it ever ran."""
    # helmfile fills in template data in a templated file only ({{ }} makes a file a template)
    args = '"{{`{{ .Release.Name }}`}}", "{{ .Release.Namespace }}x"' if templated else '"api", "appsx"'
    hooks = "".join(
        f"""
      - events: ["{event}"]
        command: /bin/sh
        args: ["-c", "touch {marks}/{event}"]"""
        for event in EVENTS
    )
    return f"""\
hooks:
  - name: generate
    events: ["prepare", "cleanup"]
    showlogs: true
    command: ./hook.sh
    args: ["global"]
environments:
  dev: {{}}
---
releases:
  - name: api
    namespace: apps
    chart: ./charts/echo
    hooks:{hooks}
      - events: ["postsync"]
        command: ./hook.sh
        args: [{args}, "it's \\"done\\""]
      - events: ["postapply"]
        command: echo
"""


@pytest.mark.parametrize("templated", [False, True], ids=["plain", "templated"])
def test_hooks_become_release_hooks_and_the_import_runs_none(
    templated: bool, tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    name = "helmfile.yaml.gotmpl" if templated else "helmfile.yaml"
    project = project_with(
        tmp_path,
        {name: hooks_state(marks, templated=templated), "hook.sh": f'#!/bin/sh\ntouch {marks}/script-"$1"\n'},
    )
    (project / "hook.sh").chmod(0o755)
    result = imported(project, name, helmfile, helm3, tmp_path)
    assert result.code == 0, result.err
    spec = spec_of(project)
    assert spec["defaults"]["hooks"] == [
        {"events": ["preapply", "cleanup"], "command": ["./hook.sh", "global"], "showLogs": True}
    ]
    hooks = spec["releases"][0]["hooks"]
    expected_events = [["preapply"], ["presync", "preuninstall"], ["presync"], ["postsync"]]
    expected_events += [["preuninstall"], ["postuninstall"], ["cleanup"]]
    assert [h["events"] for h in hooks[:7]] == expected_events
    assert hooks[2]["command"] == ["/bin/sh", "-c", f"touch {marks}/presync"]
    script = './hook.sh "$DEPLOYER_RELEASE" "$${DEPLOYER_NAMESPACE}x" "it\'s \\"done\\""'
    shown = ["sh", "-c", script] if templated else ["./hook.sh", "api", "appsx", 'it\'s "done"']
    assert hooks[7] == {"events": ["postsync"], "command": shown}
    assert len(hooks) == 8  # postapply: no such event
    for line in [
        f"{name}:1: hooks: hook generate: prepare: deployer never runs a command while it plans or renders",
        "releases[api].hooks: hook 2: preapply: helmfile's preapply runs before this release's install",
        "releases[api].hooks: hook 9: deployer has no postapply event; not carried over for it",
    ]:
        assert line in result.err
    for verb in (["validate"], ["template", "-e", "dev"]):
        checked = run(verb, project, {"DEPLOYER_HELM": str(helm3)})
        assert checked.code == 0, checked.err
    assert sorted(p.name for p in marks.iterdir()) == []  # the import (and deployer) ran nothing


def test_the_imported_hook_command_gets_the_release_from_deployer_variables(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    """The sh -c a hook with template data becomes reads the variables deployer gives every hook:
    run here as deployer's hook runner would (argv, DEPLOYER_* set), it gets what helmfile gave."""
    import subprocess

    marks = tmp_path / "marks"
    marks.mkdir()
    project = project_with(
        tmp_path,
        {
            "helmfile.yaml.gotmpl": hooks_state(marks, templated=True),
            "hook.sh": f'#!/bin/sh\nprintf "%s|" "$@" > {marks}/args\n',
        },
    )
    (project / "hook.sh").chmod(0o755)
    assert imported(project, "helmfile.yaml.gotmpl", helmfile, helm3, tmp_path).code == 0
    [hook] = [h for h in spec_of(project)["releases"][0]["hooks"] if h["command"][0] == "sh"]
    argv = [a.replace("$${", "${") for a in hook["command"]]  # deployer.yaml's interpolation
    subprocess.run(
        argv,
        cwd=project,
        env={"PATH": "/usr/bin:/bin", "DEPLOYER_RELEASE": "api", "DEPLOYER_NAMESPACE": "apps"},
        check=True,
    )
    assert (marks / "args").read_text() == 'api|appsx|it\'s "done"|'


# -------------------------------------------------------------------------------------------------
# chart versions


def test_unpinned_and_ranged_versions_are_kept_and_deployer_lock_makes_the_spec_valid(
    tmp_path: Path, helm: Path, helm3: Path, helmfile: Path, cache: Path
) -> None:
    with published(tmp_path, helm3, ("1.0.0", "1.0.3", "1.1.0", "2.0.0")) as repo:
        project = project_with(
            tmp_path,
            {
                "helmfile.yaml": f"""\
                repositories:
                  - name: local
                    url: {repo.url}
                environments:
                  dev: {{}}
                  prod: {{}}
                ---
                releases:
                  - name: latest
                    namespace: apps
                    chart: local/hello
                  - name: tilde
                    namespace: apps
                    chart: local/hello
                    version: ~1.0.0
                  - name: caret
                    namespace: apps
                    chart: local/hello
                    version: ^1.0
                  - name: exact
                    namespace: apps
                    chart: local/hello
                    version: 1.0.0
                """
            },
        )
        result = imported(project, "helmfile.yaml", helmfile, helm3, tmp_path)
        assert result.code == 0, result.err
        spec = spec_of(project)
        assert {r["name"]: r.get("version") for r in spec["releases"]} == {
            "latest": None,
            "tilde": "~1.0.0",
            "caret": "^1.0",
            "exact": "1.0.0",
        }
        assert (
            "helmfile.yaml:11: releases[latest].chart: no chart version (helmfile installs the latest "
            "there): so does deployer; run `deployer lock`"
        ) in result.err
        assert (
            "helmfile.yaml:14: releases[tilde].chart: chart version '~1.0.0' is a range: carried over as "
            "it is (deployer reads ranges as helm does); run `deployer lock`"
        ) in result.err
        assert "releases[exact]" not in result.err
        env = {"DEPLOYER_HELM": str(helm)}
        unlocked = run(["validate"], project, env)
        assert unlocked.code == 1 and "deployer lock" in unlocked.err
        locked = run(["lock"], project, env)
        assert locked.code == 0, locked.err
        checked = run(["validate"], project, env)
        assert checked.code == 0, checked.err
        lock = yaml.safe_load((project / "deployer.lock.yaml").read_text())
        versions = {key.split("/")[1]: entries[0]["version"] for key, entries in lock["releases"].items()}
        assert versions == {"latest": "2.0.0", "tilde": "1.0.3", "caret": "1.1.0", "exact": "1.0.0"}


# -------------------------------------------------------------------------------------------------
# a setup in several files

NESTED = {
    "helmfile.yaml": """\
    bases:
      - bases/environments.yaml
    helmfiles:
      - path: apps/helmfile.yaml
      - teams/*/helmfile.yaml
    releases:
      - name: ingress
        namespace: edge
        chart: ./charts/echo
        values:
          - values/ingress.yaml
    """,
    "bases/environments.yaml": """\
    environments:
      dev: {}
      prod: {}
    ---
    helmDefaults:
      wait: true
      historyMax: 3
    hooks:
      - events: ["cleanup"]
        command: ./scripts/notify.sh
    """,
    "values/ingress.yaml": "greeting: from-the-edge\n",
    "apps/helmfile.yaml": """\
    bases:
      - ../bases/environments.yaml
    helmDefaults:
      waitForJobs: true
    releases:
      - name: shop
        namespace: apps
        chart: ../charts/echo
        values:
          - values/shop.yaml
        hooks:
          - events: ["presync"]
            command: ./migrate.sh
    """,
    "apps/values/shop.yaml": "greeting: shop\n",
    "teams/payments/helmfile.yaml": """\
    environments:
      dev: {}
      prod: {}
    ---
    repositories:
      - name: payments
        url: https://charts.example.com/payments
    releases:
      - name: pay
        namespace: payments
        chart: ../../charts/echo
        values:
          - pay.yaml
    """,
    "teams/payments/pay.yaml": "greeting: pay\n",
}


def test_bases_and_nested_helmfiles_become_included_files_that_render_what_helmfile_renders(
    tmp_path: Path, helm3: Path, helmfile: Path, cache: Path
) -> None:
    """Shaped like a platform repository: environments and helmDefaults in a base, one helmfile per
    team in its own directory (a glob among them), each with values next to it. Each team's releases
    land in a file of their own (CODEOWNERS), every path resolved from the team's directory, and
    deployer renders what helmfile renders, environment by environment."""
    project = project_with(tmp_path, NESTED)
    for script in ("scripts/notify.sh", "apps/scripts/notify.sh"):  # helmfile template runs cleanup hooks
        (project / script).parent.mkdir(parents=True, exist_ok=True)
        (project / script).write_text("#!/bin/sh\n")
        (project / script).chmod(0o755)
    result = imported(project, "helmfile.yaml", helmfile, helm3, tmp_path)
    assert result.code == 0, result.err
    assert "wrote IMPORT-REPORT.md, deployer.d/apps.yaml, deployer.d/teams-payments.yaml, deployer.yaml" in (
        result.out
    )
    spec = spec_of(project)
    assert spec["include"] == ["deployer.d/apps.yaml", "deployer.d/teams-payments.yaml"]
    assert list(spec["environments"]) == ["dev", "prod"]  # from the base
    assert spec["defaults"] == {
        "wait": True,
        "historyMax": 3,
        "hooks": [{"events": ["cleanup"], "command": ["./scripts/notify.sh"]}],
    }
    assert [r["name"] for r in spec["releases"]] == ["ingress"]
    apps = yaml.safe_load((project / "deployer.d" / "apps.yaml").read_text())
    [shop] = apps["releases"]
    # its own helmDefaults (and those of its own base), its hook's command from its directory
    assert shop["values"] == ["apps/values/shop.yaml"]
    assert (shop["waitForJobs"], shop["wait"], shop["historyMax"]) == (True, True, 3)
    assert shop["hooks"] == [  # its base's cleanup hook, then its own; helmfile runs both in apps/
        {"events": ["cleanup"], "command": ["./apps/scripts/notify.sh"]},
        {"events": ["presync"], "command": ["./apps/migrate.sh"]},
    ]
    payments = yaml.safe_load((project / "deployer.d" / "teams-payments.yaml").read_text())
    assert payments["repositories"] == [{"name": "payments", "url": "https://charts.example.com/payments"}]
    [pay] = payments["releases"]
    # helmfile applies deployer.yaml's helmDefaults to no release of another state file
    assert (pay["chart"], pay["wait"], pay["historyMax"]) == ("./charts/echo", False, 10)
    checked = run(["validate"], project)
    assert checked.code == 0, checked.err
    assert "3 releases in 3 files" in checked.out
    environ = helm_env(tmp_path)
    for env in ("dev", "prod"):
        expected = helmfile_template(helmfile, helm3, project / "helmfile.yaml", env, environ)
        assert len(expected) == 6
        assert_same_objects(expected, deployer_template(project, helm3, env, environ))


def test_a_helmfile_d_directory_becomes_one_included_file_per_state_file(
    tmp_path: Path, helm3: Path, helmfile: Path, cache: Path
) -> None:
    project = project_with(
        tmp_path,
        {
            "helmfile.d/00-infra.yaml": """\
            environments:
              staging: {}
            ---
            helmDefaults:
              atomic: true
            releases:
              - name: cert-manager
                namespace: infra
                chart: ../charts/echo
                values:
                  - ../values/infra.yaml
            """,
            "helmfile.d/10-apps.yaml.gotmpl": """\
            environments:
              staging: {}
            ---
            releases:
              - name: web
                namespace: {{ .Environment.Name }}-web
                chart: ../charts/echo
            """,
            "values/infra.yaml": "greeting: infra\n",
        },
    )
    result = run(
        ["import", "helmfile", "--helmfile", str(helmfile), "--helm", str(helm3)], project, helm_env(tmp_path)
    )
    assert result.code == 0, result.err
    assert "imported helmfile.d (1 environment(s))" in result.out
    spec = spec_of(project)
    assert spec["include"] == ["deployer.d/00-infra.yaml", "deployer.d/10-apps.yaml"]
    assert spec["environments"] == {"staging": {}} and spec["releases"] == []
    infra = yaml.safe_load((project / "deployer.d" / "00-infra.yaml").read_text())["releases"]
    assert [(r["name"], r["atomic"], r["values"]) for r in infra] == [
        ("cert-manager", True, ["values/infra.yaml"])
    ]
    apps = yaml.safe_load((project / "deployer.d" / "10-apps.yaml").read_text())["releases"]
    assert [(r["name"], r["namespace"]) for r in apps] == [("web", "staging-web")]
    assert run(["validate"], project).code == 0
    environ = helm_env(tmp_path)
    expected = helmfile_template(helmfile, helm3, project / "helmfile.d", "staging", environ)
    assert_same_objects(expected, deployer_template(project, helm3, "staging", environ))


def test_hook_shapes_of_real_helmfiles_kubectl_apply_release_templates_and_top_level_events(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    """kubectlApply (a storage class before a release), hooks shared through a release template (a
    YAML anchor), and a top-level hook on an event helmfile never runs at the top level."""
    project = project_with(
        tmp_path,
        {
            "helmfile.yaml": """\
            hooks:
              - events: ["presync"]
                command: echo
            templates:
              default: &default
                namespace: apps
                chart: ./charts/echo
                hooks:
                  - name: storage
                    events: ["presync"]
                    kubectlApply:
                      filename: manifests/storage class.yaml
            releases:
              - name: db
                <<: *default
              - name: cache
                <<: *default
            """
        },
    )
    result = imported(project, "helmfile.yaml", helmfile, helm3, tmp_path)
    assert result.code == 0, result.err
    spec = spec_of(project)
    assert "defaults" not in spec
    apply = 'kubectl --context "$DEPLOYER_KUBE_CONTEXT" apply -f "manifests/storage class.yaml"'
    for release in spec["releases"]:
        assert release["hooks"] == [{"events": ["presync"], "command": ["sh", "-c", apply]}]
    assert (
        "helmfile.yaml:1: hooks: hook 1: helmfile never runs a top-level hook on presync (only prepare "
        "and cleanup); not carried over: put it on the releases it is for"
    ) in result.err
    assert run(["validate"], project).code == 0


def test_a_state_file_two_parents_name_is_imported_once_and_same_named_files_stay_apart(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    release = "releases:\n  - name: {name}\n    namespace: {name}\n    chart: {chart}\n"
    project = project_with(
        tmp_path,
        {
            "helmfile.yaml": "helmfiles:\n  - apps/helmfile.yaml\n  - apps.yaml\n  - shared/helmfile.yaml\n",
            "apps/helmfile.yaml": "helmfiles:\n  - ../shared/helmfile.yaml\n"
            + release.format(name="shop", chart="../charts/echo"),
            "apps.yaml": release.format(name="blog", chart="./charts/echo"),
            "shared/helmfile.yaml": release.format(name="dns", chart="../charts/echo"),
        },
    )
    result = imported(project, "helmfile.yaml", helmfile, helm3, tmp_path)
    assert result.code == 0, result.err
    assert spec_of(project)["include"] == [
        "deployer.d/apps.yaml",
        "deployer.d/shared.yaml",
        "deployer.d/apps-2.yaml",
    ]
    names = {
        f: [r["name"] for r in yaml.safe_load((project / f).read_text())["releases"]]
        for f in spec_of(project)["include"]
    }
    assert names == {
        "deployer.d/apps.yaml": ["shop"],
        "deployer.d/shared.yaml": ["dns"],
        "deployer.d/apps-2.yaml": ["blog"],
    }
    assert "shared/helmfile.yaml:1: helmfiles: named by more than one helmfiles: entry" in result.err
    assert run(["validate"], project).code == 0


def test_a_nested_helmfile_for_another_kube_context_is_reported(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    project = project_with(
        tmp_path,
        {
            "helmfile.yaml": "environments:\n  prod:\n    kubeContext: eu-1\n---\n"
            "helmfiles:\n  - us/helmfile.yaml\n",
            "us/helmfile.yaml": "environments:\n  prod:\n    kubeContext: us-1\n---\n"
            "releases:\n  - name: web\n    chart: ../charts/echo\n",
        },
    )
    result = imported(project, "helmfile.yaml", helmfile, helm3, tmp_path)
    assert result.code == 0, result.err
    assert (
        "us/helmfile.yaml:3: environments.prod.kubeContext: 'us-1' differs from deployer.yaml's (eu-1); "
        "deployer runs an environment against one kube context"
    ) in result.err
    assert spec_of(project)["environments"] == {"prod": {"kubeContext": "eu-1"}}


def test_a_helmfile_d_directory_of_which_no_file_imports_is_one_clear_error(tmp_path: Path) -> None:
    project = project_with(tmp_path, {"helmfile.d/10-apps.yaml": "releases:\n  - name: [unclosed\n"})
    before = tree_state(project)
    result = run(["import", "helmfile"], project)
    assert result.code == 1
    assert result.err.startswith(
        "error: no state file of helmfile.d could be imported: helmfile.d/10-apps.yaml:"
    )
    assert "Traceback" not in result.err and "internal error" not in result.err
    assert tree_state(project) == before


def test_a_repository_declared_twice_is_written_once_with_the_url_helm_keeps(tmp_path: Path) -> None:
    """Seen in a public home-lab repository: the same repository twice (a trailing slash apart)."""
    project = project_with(
        tmp_path,
        {
            "helmfile.yaml": """\
            repositories:
              - name: groundhog2k
                url: https://groundhog2k.github.io/helm-charts
              - name: other
                url: https://charts.example.com/other
              - name: groundhog2k
                url: https://groundhog2k.github.io/helm-charts/
            releases:
              - name: web
                chart: ./charts/echo
            """
        },
    )
    result = run(["import", "helmfile"], project)
    assert result.code == 0, result.err
    # The same URL twice (a trailing slash apart) loses nothing: no report line.
    assert "import: everything was carried over" in result.err
    assert spec_of(project)["repositories"] == [
        {"name": "groundhog2k", "url": "https://groundhog2k.github.io/helm-charts/"},
        {"name": "other", "url": "https://charts.example.com/other"},
    ]
    assert run(["validate"], project).code == 0
