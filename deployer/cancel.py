"""What a run does on SIGINT or SIGTERM (a CI system cancelling its job, or Ctrl-C).

Two modes. Outside `deferred()` (reading verbs, planning, waiting for a lock) the first signal ends
the run at once: `Cancelled` unwinds the stack, asyncio cancels the running tasks and each kills its
helm (deployer/helm.py), and every `with` block cleans up (the private values directory, the
environment Lease). Inside
`deferred()` (while a run changes releases) the first signal is recorded and passed on to the
running helm and hook processes, which cancel their own work; the run starts no further release
and no further hook (`reason()`), waits for them (GRACE_SECONDS, then kills them), reports each
release, releases its lock and exits 130 (SIGINT) or 143 (SIGTERM). A second signal ends the process
at once: helm and hook processes are killed, private directories removed, no traceback.

The processes a run started register here while they run: helm (deployer/helm.py), which stays
in deployer's process group so that a CI system killing the group kills helm too, gets the signal
itself; a release hook (deployer/hookrun.py), which runs in a process group of its own, gets it
with everything it started. Nothing here imports them (start-up cost): they call in.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

GRACE_SECONDS = 30.0  # how long running helm and hook processes get to stop after the signal
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _State:
    received: int | None = None  # the first signal
    deferred = 0  # depth of deferred() blocks
    private_dirs: set[Path] = set()  # noqa: RUF012 (one process-wide set)
    # The processes running now: pid -> (its asyncio Process, whether it leads its own group).
    processes: dict[int, tuple[Any, bool]] = {}  # noqa: RUF012 (one process-wide table)


_processes_lock = threading.Lock()  # the grace timer's thread reads the table too


_state = _State()


class Cancelled(BaseException):
    """The run was cancelled by a signal (a BaseException, like KeyboardInterrupt: no `except
    Exception` may swallow it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_code(signum: int) -> int:
    return 128 + signum


def exit_status(signum: int | None = None) -> int:
    """How main.py ends a cancelled run: one line on stderr, and 128 + the signal."""
    sig = signal.Signals(signum or _state.received or signal.SIGINT)
    print(f"deployer: cancelled by {sig.name}", file=sys.stderr)
    return exit_code(sig)


def received() -> int | None:
    """The first signal received, or None."""
    return _state.received


def received_name() -> str:
    """The first signal's name (SIGINT, SIGTERM), or ""."""
    return signal.Signals(_state.received).name if _state.received is not None else ""


def reason() -> str:
    """Why no further release may start ("" while they may)."""
    return f"cancelled by {signal.Signals(_state.received).name}" if _state.received is not None else ""


def check() -> None:
    """Raise Cancelled if a signal came (after a deferred block, before planning more work)."""
    if _state.received is not None:
        raise Cancelled(_state.received)


@contextmanager
def handling() -> Iterator[None]:
    """Install the handlers for the block (main.py, around a verb)."""
    _state.received = None
    if threading.current_thread() is not threading.main_thread():  # only it may set handlers
        yield
        return
    previous = {sig: signal.signal(sig, _handler) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def deferred() -> Iterator[None]:
    """While the block changes releases, a first signal does not interrupt it (see the docstring)."""
    _state.deferred += 1
    try:
        yield
    finally:
        _state.deferred -= 1


def track_private_dir(path: Path) -> None:
    _state.private_dirs.add(path)


def untrack_private_dir(path: Path) -> None:
    _state.private_dirs.discard(path)


def track_process(proc: Any, *, group: bool = False) -> None:
    """Pass a signal on to `proc` (an asyncio Process) while it runs; to its whole process group
    when `group` (a hook started with a session of its own)."""
    with _processes_lock:
        _state.processes[proc.pid] = (proc, group)


def untrack_process(proc: Any) -> None:
    with _processes_lock:
        _state.processes.pop(proc.pid, None)


def signal_processes(signum: int) -> None:
    """Send `signum` to every tracked process still running (SIGKILL ends them). A terminal's
    Ctrl-C reaches helm twice (directly and passed on), which helm takes as one cancellation."""
    with _processes_lock:
        running = [(pid, group) for pid, (p, group) in _state.processes.items() if p.returncode is None]
    for pid, group in running:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # it ended in between
            if group:
                os.killpg(pid, signum)
            else:
                os.kill(pid, signum)


def _handler(signum: int, _frame: FrameType | None) -> None:
    if _state.received is not None:  # the second signal: end now
        signal_processes(signal.SIGKILL)
        shutil = sys.modules.get("shutil")  # loaded by whoever made a private directory
        if shutil is not None:
            for path in list(_state.private_dirs):
                shutil.rmtree(path, ignore_errors=True)
        os.write(2, f"{signal.Signals(signum).name} again: stopped at once\n".encode())
        os._exit(exit_code(_state.received))
    _state.received = signum
    if not _state.deferred:
        _end_now(signum)
        return
    signal_processes(signum)
    timer = threading.Timer(GRACE_SECONDS, signal_processes, args=(signal.SIGKILL,))
    timer.daemon = True
    timer.start()


def _end_now(signum: int) -> None:
    """Outside deferred(): inside an event loop, cancel its tasks (as asyncio.run does on Ctrl-C: a
    task cancelled even while it starts helm kills that helm), which ends asyncio.run with
    CancelledError; elsewhere raise Cancelled here. main.py turns either into exit 128 + signum."""
    aio = sys.modules.get("asyncio")
    if aio is None:  # never loaded: no event loop, no helm
        raise Cancelled(signum)
    try:
        loop = aio.get_running_loop()
    except RuntimeError:  # between event loops
        raise Cancelled(signum) from None

    def cancel_tasks() -> None:
        # deployer's own tasks only: cancelling asyncio's (a subprocess transport connecting its
        # pipes) leaves a process no one ever waits for, and the loop hangs.
        for task in aio.all_tasks(loop):
            frame = getattr(task.get_coro(), "cr_frame", None)
            if frame is not None and str(frame.f_globals.get("__name__", "")).startswith("deployer."):
                task.cancel()

    # A helm being started when its task is cancelled is killed by asyncio, which may then report
    # it from its child watcher ("Loop ... that handles pid N is closed"): noise after a cancel.
    sys.modules["logging"].getLogger("asyncio").setLevel("CRITICAL")
    loop.call_soon_threadsafe(cancel_tasks)


def release_left(key: str, status: str | None, revision: int | None) -> str:
    """What a release cancelled mid-change was left as (helm's stored `status`; None: no release),
    and what the next run does about it."""
    if status is None:
        return f"{key} is not installed: the next `deployer apply` installs it"
    where = f"{key} left {status} at revision {revision}"
    if status.startswith("pending-"):
        return f"{where}: run `deployer apply --recover` (it rolls back or uninstalls, then applies)"
    if status == "deployed":  # helm finished before the signal, or (atomic) rolled its change back
        return f"{where}: `deployer diff` shows what remains to change"
    return f"{where}: the next `deployer apply` changes it again"
