"""Helm tests (a chart's `helm.sh/hook: test` objects) of installed releases, in `needs` order: for
`deployer test`, and for `apply --test` after the releases the run installed or upgraded.

One `helm test` per release, one release at a time (tests of what a release needs run first).
What a failed test printed (helm's status, the test Pods' logs, its error) is masked like the
diff: the release's sensitive values and its Secrets' data never show.

No printing: progress and the output of failed tests go to the `log` callback.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from deployer.errors import HelmError
from deployer.graph import topological_order
from deployer.helm import Helm
from deployer.plan import DesiredState
from deployer.project import DesiredRelease
from deployer.redact import Redactor, for_release

PASSED, FAILED, NO_TESTS = "passed", "failed", "no tests"
OUTPUT_LINES = 200  # the last lines of a failed test's output that are shown


@dataclass(frozen=True)
class TestTarget:
    """One installed release to test."""

    key: str
    timeout: int  # seconds, for each test hook (helm's --timeout)
    hooks: str  # its hooks' manifests, tests included (as rendered, or as helm stored them)
    redactor: Redactor
    needs: Sequence[str] = ()

    @property
    def namespace(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split("/", 1)[1]


def target(release: DesiredRelease, values: Mapping[str, Any], manifest: str, hooks: str) -> TestTarget:
    """A release to test, with what masks its output: its values (sensitive ones) and manifests."""
    redactor = for_release(release.sensitive, [(values, manifest + "\n---\n" + hooks)])
    return TestTarget(release.key, release.timeout, hooks, redactor, tuple(release.needs))


@dataclass
class TestResult:
    key: str
    status: str
    detail: str = ""
    output: str = ""  # masked: helm's status, logs and error (failed tests only)
    seconds: float = 0.0


def test_hooks(hooks: str) -> list[tuple[str, str]]:
    """(kind, name) of each test hook in a hooks manifest."""
    found = []
    for doc in yaml.safe_load_all(hooks or ""):
        if not isinstance(doc, dict):
            continue
        meta = doc.get("metadata") or {}
        events = str((meta.get("annotations") or {}).get("helm.sh/hook", ""))
        if {"test", "test-success"} & {e.strip() for e in events.split(",")}:
            found.append((str(doc.get("kind", "")), str(meta.get("name", ""))))
    return sorted(found)


@dataclass
class Tester:
    helm: Helm
    kube_flags: Sequence[str]
    log: Callable[[str], None] = lambda _message: None

    def wants_logs(self, tests: Iterable[tuple[str, str]]) -> bool:
        """helm --logs: helm 4 prints the logs of test Pods; helm 3 asks for the logs of every test
        hook as if it were a Pod and fails the run when one is a Job (its GetPodLogs)."""
        return self.helm.major >= 4 or all(kind == "Pod" for kind, _name in tests)

    async def run(self, targets: Sequence[TestTarget]) -> list[TestResult]:
        by_key = {t.key: t for t in targets}
        order = topological_order(by_key, {k: t.needs for k, t in by_key.items()})
        return [await self.one(by_key[key]) for key in order]

    async def one(self, what: TestTarget) -> TestResult:
        tests = test_hooks(what.hooks)
        if not tests:
            self.log(f"{what.key}: no tests (the chart has no helm.sh/hook: test objects)")
            return TestResult(what.key, NO_TESTS)
        self.log(f"{what.key}: testing ({', '.join(f'{kind}/{name}' for kind, name in tests)})")
        started = time.monotonic()
        try:
            await self.helm.test(
                what.name,
                what.namespace,
                self.kube_flags,
                timeout=what.timeout,
                limit=what.timeout * len(tests) + 60,
                logs=self.wants_logs(tests),
            )
        except HelmError as exc:
            error = what.redactor.redact(exc.stderr)
            last = error.splitlines()[-1] if error else exc.message
            output = what.redactor.redact(f"{exc.stdout.rstrip()}\n{error}".strip())
            lines = output.splitlines()[-OUTPUT_LINES:]
            result = TestResult(what.key, FAILED, last, "\n".join(lines), time.monotonic() - started)
            self.log(f"{what.key}: tests failed ({result.seconds:.1f}s): {last}")
            for line in lines:
                self.log(f"  | {line}")
            return result
        seconds = time.monotonic() - started
        self.log(f"{what.key}: tests passed ({seconds:.1f}s)")
        return TestResult(what.key, PASSED, seconds=seconds)


def after_apply(
    tester: Tester, states: Iterable[DesiredState]
) -> Callable[[list[str]], Awaitable[dict[str, str]]]:
    """`apply --test`: the Executor's test_after, testing releases as this run deployed them."""
    targets = {s.release.key: target(s.release, s.values, s.manifest, s.hooks) for s in states}

    async def test_after(keys: list[str]) -> dict[str, str]:
        results = await tester.run([targets[k] for k in keys if k in targets])
        return {r.key: f"tests failed: {r.detail}" for r in results if r.status == FAILED}

    return test_after
