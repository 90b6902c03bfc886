"""Fixtures for tests that talk to a real Kubernetes control plane (tools/sandbox, or the cluster
DEPLOYER_TEST_KUBECONFIG points at). Every test in this directory is marked `cluster`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testing import sandbox

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def kubeconfig() -> Path:
    """The cluster's kubeconfig; starts tools/sandbox once per session unless one is configured."""
    try:
        return sandbox.cluster_kubeconfig()
    except sandbox.SandboxError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture
def namespace(kubeconfig: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (without waiting for it to go)."""
    name = sandbox.create_namespace(kubeconfig, hint=request.node.name)
    yield name
    sandbox.delete_namespace(kubeconfig, name)
