from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from testing import tools

# Property tests check laws, not speed: on a loaded CI machine (2 cores shared with other jobs),
# hypothesis' deadline and its "generation is slow / too much filtering / data too large" health
# checks fail runs whose properties all hold. Every hypothesis test in tests/ runs under this profile.
settings.register_profile(
    "deployer",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
settings.load_profile("deployer")


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


@pytest.fixture(scope="session")
def helm3() -> Path:
    """Helm 3, the helm helmfile v1.8.0 is tested with (the import tests)."""
    return tools.helm_binary(3)


@pytest.fixture(scope="session")
def helmfile() -> Path:
    """The pinned helmfile (tools/build helmfile: a few minutes the first time, then cached)."""
    return tools.tool_dir("helmfile") / "helmfile"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private deployer cache for one test (charts, repository indexes, helm config)."""
    path = tmp_path / "deployer-cache"
    monkeypatch.setenv("DEPLOYER_CACHE_DIR", str(path))
    return path
