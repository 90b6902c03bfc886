"""Run one command and measure it: wall time, CPU time and memory of its whole process tree.

What is measured, exactly:
- wall: time.perf_counter() from just before fork to the return of os.wait4() on the command.
- cpu: ru_utime + ru_stime from os.wait4(). On Linux that rusage covers the command and every
  descendant it waited for (helm processes started by deployer or helmfile included).
- max_proc_rss: ru_maxrss from os.wait4(): the peak RSS of the single largest process of the tree
  (Linux reports the maximum over the process and its waited-for descendants, not a sum).
- tree_rss: the peak, over samples every SAMPLE_INTERVAL seconds, of the summed RSS of every live
  process in the command's session (the command is started in a new session, and deployer's and
  helmfile's helm children inherit it). Sampling can miss a process that lives less than one
  interval, so this is a lower bound of the true simultaneous peak.
- root_rss: the high-water mark (VmHWM) of the command's own process, last sampled before it exits
  (for deployer: the Python process without its helm children).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SAMPLE_INTERVAL = 0.05
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds
    cpu: float  # seconds, user + system of the tree
    max_proc_rss: int  # bytes
    tree_rss: int  # bytes
    root_rss: int  # bytes
    returncode: int


class TreeSampler(threading.Thread):
    """Samples the summed RSS of every process whose session id is `sid`."""

    def __init__(self, sid: int, interval: float = SAMPLE_INTERVAL) -> None:
        super().__init__(daemon=True)
        self.sid = sid
        self.interval = interval
        self.peak = 0
        self.root_hwm = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        self.sample()
        while not self._stop_event.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def sample(self) -> None:
        total = 0
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    data = f.read()
            except OSError:
                continue
            fields = data[data.rfind(b")") + 2 :].split()
            # fields[0] is stat field 3 (state): session is field 6, rss (pages) field 24.
            if len(fields) > 21 and int(fields[3]) == self.sid:
                total += int(fields[21]) * PAGE
        self.peak = max(self.peak, total)
        try:
            with open(f"/proc/{self.sid}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"VmHWM:"):
                        self.root_hwm = max(self.root_hwm, int(line.split()[1]) * 1024)
                        break
        except OSError:
            pass


def run_measured(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    stdout: Path,
    stderr: Path,
    timeout: float = 1800.0,
) -> Sample:
    with stdout.open("wb") as out, stderr.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        sampler = TreeSampler(proc.pid)
        sampler.start()
        timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, 9))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
        sampler.stop()
    return Sample(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        max_proc_rss=usage.ru_maxrss * 1024,
        tree_rss=max(sampler.peak, usage.ru_maxrss * 1024),
        root_rss=sampler.root_hwm,
        returncode=proc.returncode,
    )


@dataclass(frozen=True)
class Stat:
    median: float
    low: float
    high: float
    count: int


def stat(values: Sequence[float]) -> Stat:
    return Stat(statistics.median(values), min(values), max(values), len(values))
