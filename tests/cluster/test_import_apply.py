"""A helmfile with hooks and helm flags, imported, then applied on the sandbox with both helm majors:
the import runs no hook, apply runs the carried hooks at their events with the release they were
written for, and the imported spec converges (diff finds nothing, a second apply changes nothing)."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import yaml

from testing.cli import run
from testing.cluster_run import Deployer
from testing.helmfile import DATA, helm_env
from testing.tools import helm_binary, tool_dir

RECORD = '#!/bin/sh\necho "$DEPLOYER_EVENT $1" >> events.log\n'


def test_an_imported_helmfile_runs_its_hooks_under_apply_only_and_converges(
    tmp_path: Path, namespace: str, helm: Path, kubeconfig: Path, cache: Path
) -> None:
    helmfile = tool_dir("helmfile") / "helmfile"
    project = tmp_path / namespace  # the project name: releases of other tests are not this one's
    shutil.copytree(DATA / "charts" / "echo", project / "charts" / "echo")
    (project / "record.sh").write_text(RECORD)
    (project / "record.sh").chmod(0o755)
    (project / "helmfile.yaml.gotmpl").write_text(
        textwrap.dedent(f"""\
        hooks:
          - events: ["prepare"]
            command: ./record.sh
            args: ["global"]
        helmDefaults:
          wait: true
          historyMax: 3
          cleanupOnFail: true
          createNamespace: false
        environments:
          dev: {{}}
        ---
        releases:
          - name: web
            namespace: {namespace}
            chart: ./charts/echo
            values:
              - greeting: hello-{{{{ .Environment.Name }}}}
            hooks:
              - events: ["presync", "postsync"]
                showlogs: true
                command: ./record.sh
                args: ["{{{{`{{{{ .Release.Name }}}}`}}}}"]
        """)
    )
    imported = run(
        [
            "import",
            "helmfile",
            "helmfile.yaml.gotmpl",
            "--helmfile",
            str(helmfile),
            "--helm",
            str(helm_binary(3)),
        ],
        project,
        helm_env(tmp_path),
    )
    assert imported.code == 0, imported.err
    log = project / "events.log"
    assert not log.exists()  # the import ran nothing
    spec = yaml.safe_load((project / "deployer.yaml").read_text())
    assert spec["defaults"]["createNamespace"] is False and spec["defaults"]["historyMax"] == 3

    deployer = Deployer(project, helm, kubeconfig, cache)
    assert deployer("diff", "-e", "dev").code in (0, 2)
    assert not log.exists()  # nor does diff
    applied = deployer("apply", "-e", "dev")
    assert applied.code == 0, applied.err
    assert log.read_text().splitlines() == ["preapply global", "presync web", "postsync web"]
    settled = deployer("diff", "-e", "dev", "--detailed-exitcode")
    assert settled.code == 0, settled.out + settled.err
    again = deployer("apply", "-e", "dev")
    assert again.code == 0, again.err
    assert log.read_text().splitlines() == ["preapply global", "presync web", "postsync web"]
    history = deployer.helm_cmd("history", "web", "--namespace", namespace, "--output", "yaml")
    assert len(yaml.safe_load(history)) == 1
