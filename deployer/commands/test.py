"""`deployer test`: run the selected releases' helm tests, in `needs` order; exit 1 if any fails."""

from __future__ import annotations

import argparse
import asyncio
import sys

from deployer.commands.common import selectors
from deployer.commands.session import locked, open_session
from deployer.desired import resolve, select
from deployer.helmtest import FAILED, Tester, TestResult, target
from deployer.observed import current_releases


def test(args: argparse.Namespace) -> int:
    session = open_session(args)
    # helm runs the tests of what it stored: no values are merged, so no sops key is needed.
    releases = select(resolve(session.proj, args.environment, decrypt=False), selectors(args.selector))
    # Under the lock: helm records each test run in the release, and an apply must not change the
    # release under its tests.
    with locked(session, args) as lock:
        secrets, _how = session.cluster.helm_release_secrets(sorted({r.namespace for r in releases}))
        observed = current_releases(secrets)
        results: list[TestResult] = []
        targets = []
        for rel in sorted(releases, key=lambda r: r.key):
            now = observed.get(rel.key)
            if now is None:
                if rel.installed:
                    results.append(TestResult(rel.key, FAILED, "not installed: `deployer apply` installs it"))
                continue
            targets.append(target(rel, now.values, now.manifest, now.hooks))
        tester = Tester(session.helm, session.target.helm_flags(), session.log)
        results += asyncio.run(tester.run(targets))
        lock.check()
    for result in results:
        detail = f"\t{result.detail}" if result.detail else ""
        sys.stdout.write(f"{result.key}\t{result.status}{detail}\n")
    failed = sum(r.status == FAILED for r in results)
    passed = sum(r.status != FAILED for r in results)
    sys.stdout.write(f"Tests {'FAILED' if failed else 'passed'}: {passed} ok, {failed} failed.\n")
    return 1 if failed else 0
