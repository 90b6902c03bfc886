"""benchmarks/import_corpus.py and benchmarks/helmfile_snapshots.py, the tools that measure
`deployer import helmfile` on real files: what their Markdown says for repositories and snapshot
cases shaped like the real ones (a plain helmfile with a local chart; nested state files; a case
that needs the network), and that they notice an import that runs a hook or writes a value of the
process environment in clear (a stand-in deployer that misbehaves on purpose)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from testing.chartrepo import make_chart

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
DEPLOYER = Path(sys.executable).parent / "deployer"


def _repo(root: Path) -> Path:
    """A home-lab shaped repository: a plain helmfile.yaml with one local chart, and a release file
    under releases/ that is one of its nested helmfiles (not a state file of its own)."""
    repo = root / "home-ops"
    chart = make_chart(root / "src", "app", "1.0.0")
    (repo / "charts").mkdir(parents=True)
    chart.rename(repo / "charts" / "app")
    (repo / "helmfile.yaml").write_text(
        textwrap.dedent("""\
        environments:
          default: {}
        ---
        releases:
          - name: app
            namespace: apps
            chart: ./charts/app
            values:
              - greeting: hi
        """)
    )
    (repo / "releases" / "more").mkdir(parents=True)
    (repo / "releases" / "more" / "helmfile.yaml").write_text("releases: []\n")
    return repo


def _corpus(*argv: str | Path, helm: Path, helmfile: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, BENCH / "import_corpus.py", "--helm", helm, "--helmfile", helmfile, *argv]
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)


def test_a_plain_helmfile_with_a_local_chart_imports_completely_and_renders_the_same(
    tmp_path: Path, helm: Path, helmfile: Path
) -> None:
    repo = _repo(tmp_path)
    listing = tmp_path / "corpus.txt"
    listing.write_text(f"{repo} someone/home-ops@abc123\n")
    done = _corpus("--list", listing, helm=helm, helmfile=helmfile)
    assert done.returncode == 0, done.stderr
    rows = [ln for ln in done.stdout.splitlines() if ln.startswith("| someone/home-ops")]
    assert rows == [
        "| someone/home-ops@abc123 | `helmfile.yaml` | plain | complete | pass | default: equal | none |  |"
    ]
    assert "Complete (imported, nothing lost: no loss line, notes apart): 1/1 (100%)" in done.stdout
    assert not list(repo.glob("deployer.yaml")), "the import wrote into the repository"
    again = _corpus("--list", listing, helm=helm, helmfile=helmfile)
    assert again.stdout == done.stdout  # deterministic


def test_an_import_that_runs_a_hook_or_writes_an_environment_value_is_reported(
    tmp_path: Path, helm: Path, helmfile: Path
) -> None:
    repo = _repo(tmp_path)
    state = repo / "helmfile.yaml"
    state.write_text(
        state.read_text()
        + "    hooks:\n"
        + "      - events: [prepare]\n"
        + "        command: kubectl\n"
        + "        args: [wait, --for=condition=Ready, pods]\n"
        + "  - name: db\n"
        + "    namespace: apps\n"
        + "    chart: ./charts/app\n"
        + "    values:\n"
        + '      - password: {{ requiredEnv "DB_PASSWORD" }}\n'
    )
    state.rename(repo / "helmfile.yaml.gotmpl")
    # A deployer that misbehaves the way the defects did: it runs the hook's command and
    # writes the variable's value into what it imports.
    stand_in = tmp_path / "bad-deployer"
    stand_in.write_text(
        textwrap.dedent(f"""\
        #!/bin/sh
        if [ "$1" = import ]; then kubectl wait pods; echo "password: $DB_PASSWORD" > leaked.yaml; fi
        exec {DEPLOYER} "$@"
        """)
    )
    stand_in.chmod(0o755)
    done = _corpus(repo, "--deployer", stand_in, "--no-render", helm=helm, helmfile=helmfile)
    assert done.returncode == 0, done.stderr
    assert "Hooks run by an import: 1 repositories" in done.stdout
    assert "values of the process environment written in clear: 1" in done.stdout
    assert "- home-ops `helmfile.yaml.gotmpl`: kubectl wait pods" in done.stdout
    assert "- home-ops `helmfile.yaml.gotmpl`: DB_PASSWORD in leaked.yaml" in done.stdout


def test_a_validate_failure_that_only_needs_deployer_lock_is_counted_on_its_own(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    """An unpinned chart from a declared repository: the written spec fails validate until `deployer
    lock` (network) pins it; that is neither a pass nor one of the other failures."""
    good = _repo(tmp_path / "a")
    unpinned = tmp_path / "b" / "platform"
    unpinned.mkdir(parents=True)
    (unpinned / "helmfile.yaml").write_text(
        textwrap.dedent("""\
        repositories:
          - name: jetstack
            url: https://charts.jetstack.io
        releases:
          - name: cert-manager
            namespace: cert-manager
            chart: jetstack/cert-manager
        """)
    )
    done = _corpus(good, unpinned, "--no-render", helm=helm3, helmfile=helmfile)
    assert done.returncode == 0, done.stderr
    rows = {
        ln.split(" | ")[0]: ln.split(" | ")[4]
        for ln in done.stdout.splitlines()
        if ln.startswith(("| home-ops |", "| platform |"))
    }
    assert rows["| home-ops"] == "pass"
    assert rows["| platform"] == "needs `deployer lock`"
    assert "`deployer validate` passes: 1/2 (50%) of imported state files" in done.stdout
    assert (
        "fails only for want of `deployer lock` (every error is an unpinned chart deployer.lock.yaml does "
        "not lock; locking needs the network, which this run does not have): 1 state files, 1 repositories. "
        "Counting those as passing: 2/2 (100%) of imported state files; repositories: 2/2 (100%)."
    ) in done.stdout
    assert "| an unpinned chart deployer.lock.yaml does not lock (only that) | 1 | platform |" in done.stdout


def test_helmfiles_snapshot_cases_compare_objects_and_name_what_needs_the_network(
    tmp_path: Path, helm: Path, helmfile: Path
) -> None:
    checkout = tmp_path / "helmfile"
    data = checkout / "test/e2e/template/helmfile/testdata"
    chart = make_chart(tmp_path / "src", "raw", "0.1.0")
    (data / "charts").mkdir(parents=True)
    chart.rename(data / "charts" / "raw-0.1.0")
    same = data / "snapshot" / "local_chart"
    same.mkdir(parents=True)
    (same / "config.yaml").write_text("helmfileArgs:\n- template\n")
    (same / "input.yaml.gotmpl").write_text(
        "releases:\n- name: foo\n  chart: ../../charts/raw-0.1.0\n  values:\n  - greeting: {{ `hey` }}\n"
    )
    recorded = textwrap.dedent("""\
        Templating release=foo, chart=../../charts/raw-0.1.0
        ---
        # Source: raw/templates/configmap.yaml
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: foo
          labels:
            chart: raw-0.1.0
        data:
          greeting: "hey"
        """)
    (same / "output.yaml").write_text(recorded)
    (same / "output-helm4.yaml").write_text(recorded)
    remote = data / "snapshot" / "go_getter_values"
    remote.mkdir()
    (remote / "config.yaml").write_text("helmfileArgs:\n- template\n")
    (remote / "input.yaml.gotmpl").write_text(
        "releases:\n- name: foo\n  chart: ../../charts/raw-0.1.0\n  values:\n"
        "  - git::https://example.com/org/repo.git@values.yaml?ref=main\n"
    )
    (remote / "output.yaml").write_text(recorded)
    listing = data / "snapshot" / "list_only"
    listing.mkdir()
    (listing / "config.yaml").write_text("helmfileArgs:\n- list\n")
    (listing / "input.yaml.gotmpl").write_text("releases: []\n")
    cmd = [sys.executable, BENCH / "helmfile_snapshots.py", checkout, "--helm", helm, "--helmfile", helmfile]
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    rows = sorted(ln for ln in done.stdout.splitlines() if ln.startswith("| ") and "---" not in ln)
    assert rows[1:] == [
        "| go_getter_values | cannot run offline | needs git::https://example.com/org/repo.git | - |",
        "| list_only | not a render case | helmfile list: its output is not objects | - |",
        "| local_chart | same objects | 1 documents | equal to recorded |",
    ]
    assert "3 cases: cannot run offline 1, not a render case 1, same objects 1." in done.stdout
