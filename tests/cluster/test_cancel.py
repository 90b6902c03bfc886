"""A cancelled run (CI sends SIGTERM or SIGINT to deployer only) stops cleanly: no further release
starts, the helm it started is told and waited for, each release's state is reported, the Lease and
the private values files are gone, and the exit code is 128 + the signal."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from testing.cluster_run import Deployer
from testing.example import copy_example
from testing.processes import alive, descendants

# A helm that does not stop by itself when told to: on SIGTERM/SIGINT during api's install it is
# killed hard (as deployer does to a helm still running after its grace period), so the release stays
# pending-install, as after any helm that died mid-change.
UNCLEAN_HELM = """#!/bin/sh
case " $* " in
  *" upgrade --install api "*)
    setsid "{real}" "$@" &
    pid=$!
    trap 'kill -9 $pid; exit 137' TERM INT
    wait $pid
    exit $? ;;
esac
exec "{real}" "$@"
"""


# A helm whose install of api ignores SIGTERM and SIGINT (as a helm stuck in a slow API call would):
# only a second signal to deployer, or its grace period, ends it.
DEAF_HELM = """#!/bin/sh
case " $* " in
  *" upgrade --install api "*)
    trap '' TERM INT
    exec sleep 300 ;;
esac
exec "{real}" "$@"
"""


@pytest.fixture
def deployer(tmp_path: Path, namespace: str, helm: Path, kubeconfig: Path, cache: Path) -> Deployer:
    project = copy_example(tmp_path / "gitops", namespace=namespace, env_suffix=f"-{namespace[-8:]}")
    return Deployer(project, helm, kubeconfig, cache)


def unschedulable_api(deployer: Deployer, env: str) -> tuple[Path, str]:
    """api's pods can never be scheduled: helm --wait waits for them until the release's timeout."""
    overlay = deployer.project / "environments" / env / "values.yaml"
    good = overlay.read_text()
    overlay.write_text(good.replace("api:\n", "api:\n  nodeSelector: {disk: none}\n"))
    return overlay, good


def started_install(deployer: Deployer, proc: subprocess.Popen[str], namespace: str) -> list[int]:
    """Wait until helm has stored api's pending-install; the helm processes deployer runs then."""
    deadline = time.monotonic() + 120
    while True:
        history = deployer.history("api", namespace)
        pids = descendants(proc.pid)
        if history and history[-1]["status"] == "pending-install" and pids:
            return pids
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"api never started installing: {history}"
        time.sleep(0.2)


@pytest.mark.parametrize(
    ("sig", "atomic"),
    [(signal.SIGTERM, True), (signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["SIGTERM-atomic", "SIGTERM-not-atomic", "SIGINT-atomic"],
)
def test_signal_during_install_with_wait_stops_cleanly_and_next_apply_converges(
    deployer: Deployer, namespace: str, tmp_path: Path, sig: signal.Signals, atomic: bool
) -> None:
    e = f"dev-{namespace[-8:]}"
    spec = deployer.project / "deployer.yaml"
    spec.write_text(spec.read_text().replace("atomic: true", f"atomic: {str(atomic).lower()}"))
    overlay, good = unschedulable_api(deployer, e)
    private = tmp_path / "tmp"
    private.mkdir()
    proc = deployer.subprocess("apply", "-e", e, env={"TMPDIR": str(private)})
    pids = started_install(deployer, proc, namespace)
    assert list(private.glob("deployer-*/*.values.yaml"))  # the private values file, while helm runs

    proc.send_signal(sig)  # deployer only, as a CI runner does: deployer must pass it on
    out, err = proc.communicate(timeout=180)

    assert proc.returncode == 128 + sig, err
    assert f"deployer: cancelled by {sig.name}" in err.splitlines()
    assert "Traceback" not in err
    lines = out.splitlines()
    api = next(line for line in lines if line.startswith(f"{namespace}/api\t"))
    assert api.startswith(f"{namespace}/api\tinstall\tfailed\tcancelled by {sig.name}: "), out
    assert f"{namespace}/worker\tinstall\tskipped\tnot started: " in out  # nothing started after
    assert lines[-1].startswith(f"Apply cancelled by {sig.name}: "), out
    assert not [pid for pid in pids if alive(pid)], "helm outlived deployer"
    assert not list(private.iterdir()), "private values left on disk"
    # What helm left (both majors): with atomic it removes what it installed; without, it marks
    # the release failed. Either way consistent: the next apply needs no --recover.
    if atomic:
        assert f"{namespace}/api is not installed: the next `deployer apply` installs it" in api, api
        assert deployer.history("api", namespace) == []
    else:
        assert f"{namespace}/api left failed at revision 1: the next `deployer apply`" in api, api
        assert [h["status"] for h in deployer.history("api", namespace)] == ["failed"]

    # The Lease went with the run: the next apply does not wait for it, and converges as it is.
    overlay.write_text(good)
    deployer.applies_at_once_and_converges(e)


def test_sigterm_during_an_upgrade_leaves_the_previous_revision_deployed_with_atomic(
    deployer: Deployer, namespace: str
) -> None:
    e = f"dev-{namespace[-8:]}"
    assert deployer("apply", "-e", e).code == 0
    overlay, good = unschedulable_api(deployer, e)
    proc = deployer.subprocess("apply", "-e", e)
    deadline = time.monotonic() + 120
    while (h := deployer.history("api", namespace))[-1]["status"] != "pending-upgrade":
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"api never started upgrading: {h}"
        time.sleep(0.2)

    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=180)

    assert proc.returncode == 143, err
    api = next(line for line in out.splitlines() if line.startswith(f"{namespace}/api\t"))
    assert api.startswith(f"{namespace}/api\tupgrade\tfailed\tcancelled by SIGTERM: "), out
    # helm (both majors) marks revision 2 failed, then atomic rolls back to 1 as revision 3.
    assert f"{namespace}/api left deployed at revision 3: `deployer diff` shows what remains" in api
    assert [h["status"] for h in deployer.history("api", namespace)] == ["superseded", "failed", "deployed"]

    overlay.write_text(good)
    deployer.applies_at_once_and_converges(e)


def test_signal_when_helm_leaves_the_release_pending_says_to_recover(
    deployer: Deployer, namespace: str, tmp_path: Path
) -> None:
    e = f"dev-{namespace[-8:]}"
    overlay, good = unschedulable_api(deployer, e)
    wrapper = tmp_path / "unclean-helm" / "helm"
    wrapper.parent.mkdir()
    wrapper.write_text(UNCLEAN_HELM.format(real=deployer.helm))
    wrapper.chmod(0o755)
    proc = deployer.subprocess("apply", "-e", e, env={"DEPLOYER_HELM": str(wrapper)})
    pids = started_install(deployer, proc, namespace)

    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=180)

    assert proc.returncode == 143, err
    assert not [pid for pid in pids if alive(pid)], "helm outlived deployer"
    what = f"{namespace}/api left pending-install at revision 1: run `deployer apply --recover`"
    assert what in out, out
    assert what in err  # said in the progress log too, where a CI log is read

    overlay.write_text(good)
    stuck = deployer("apply", "-e", e, "--lock-timeout", "5")
    assert stuck.code == 1
    assert "waiting for the lock" not in stuck.err
    assert "run `deployer apply --recover`" in stuck.out + stuck.err
    assert deployer("apply", "-e", e, "--recover").code == 0
    assert deployer("diff", "-e", e, "--detailed-exitcode").code == 0


@pytest.mark.parametrize("then", ["second-signal", "grace-period"])
def test_helm_that_does_not_stop_is_ended_by_a_second_signal_or_the_grace_period(
    deployer: Deployer, namespace: str, tmp_path: Path, then: str
) -> None:
    e = f"dev-{namespace[-8:]}"
    wrapper = tmp_path / "deaf-helm" / "helm"
    wrapper.parent.mkdir()
    wrapper.write_text(DEAF_HELM.format(real=deployer.helm))
    wrapper.chmod(0o755)
    private = tmp_path / "tmp"
    private.mkdir()
    proc = deployer.subprocess("apply", "-e", e, env={"DEPLOYER_HELM": str(wrapper), "TMPDIR": str(private)})
    deadline = time.monotonic() + 120
    while True:
        pids = descendants(proc.pid)
        if any(_is_sleep(pid) for pid in pids):
            break
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "api's helm never started"
        time.sleep(0.2)

    proc.send_signal(signal.SIGTERM)  # passed on, ignored: deployer waits (its grace is 30 s)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=2)
    if then == "second-signal":
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)

    assert proc.returncode == 143
    if then == "second-signal":
        assert "SIGTERM again: stopped at once" in err
    else:  # killed after the grace period; the run still reports and exits as cancelled
        assert f"{namespace}/api\tinstall\tfailed\tcancelled by SIGTERM: " in out, out
        assert err.splitlines()[-1] == "deployer: cancelled by SIGTERM"
    assert "Traceback" not in err
    assert not [pid for pid in pids if alive(pid)], "helm outlived deployer"
    assert not list(private.iterdir()), "private values left on disk"


def _is_sleep(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "comm").read_text().strip() == "sleep"
    except OSError:
        return False
