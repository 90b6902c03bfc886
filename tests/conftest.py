from __future__ import annotations

from pathlib import Path

import pytest

from testing import tools


@pytest.fixture(
    params=[
        pytest.param(3, id="helm3", marks=pytest.mark.helm),
        pytest.param(4, id="helm4", marks=pytest.mark.helm),
    ]
)
def helm(request: pytest.FixtureRequest) -> Path:
    """The pinned helm binary of each major version (built by tools/build, cached)."""
    major: int = request.param
    return tools.helm_binary(major)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private deployer cache for one test (charts, repository indexes, helm config)."""
    path = tmp_path / "deployer-cache"
    monkeypatch.setenv("DEPLOYER_CACHE_DIR", str(path))
    return path
