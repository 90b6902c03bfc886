"""The distribution as a user gets it: `python -m build` makes a wheel and an sdist, the wheel alone
installs into a fresh virtual environment at the lowest dependency versions pyproject.toml allows,
and the `deployer` command it installs runs the example from outside that environment (as pipx
runs it: only the entry point on PATH, no source tree, no PYTHONPATH)."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import threading
import tomllib
import venv
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from deployer import __version__
from testing.example import copy_example
from testing.tools import helm_binary

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DISTRIBUTION = "helm-deployer"


def requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return canonical(match.group(0))


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lowest_versions() -> dict[str, str]:
    """name -> the lower bound pyproject.toml declares (every dependency must have one)."""
    out = {}
    for requirement in PYPROJECT["project"]["dependencies"]:
        match = re.search(r">=\s*([^,;\s]+)", requirement)
        assert match, f"{requirement}: declare a lower bound (and keep it tested here)"
        out[requirement_name(requirement)] = match.group(1)
    return out


def imported_distributions() -> set[str]:
    """The distributions whose top-level modules the deployer package imports anywhere."""
    modules: set[str] = set()
    for path in (ROOT / "deployer").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    third_party = modules - set(sys.stdlib_module_names) - {"deployer", "__future__"}
    owners = importlib.metadata.packages_distributions()
    unknown = sorted(m for m in third_party if m not in owners)
    assert not unknown, f"imported but not installed in the dev venv: {unknown}"
    return {canonical(d) for m in third_party for d in owners[m]}


def test_dependencies_are_exactly_what_deployer_imports() -> None:
    declared = {requirement_name(r) for r in PYPROJECT["project"]["dependencies"]}
    assert declared == imported_distributions()
    assert PYPROJECT["project"]["name"] == DISTRIBUTION


# --- the built distribution, installed (slow: builds, creates a venv, installs from pip's cache) ---


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding only the wheel and its dependencies at their lowest allowed versions;
    returns a bin directory holding nothing but a link to its `deployer` (pipx's layout)."""
    base = tmp_path_factory.mktemp("fresh")
    venv.create(base / "venv", with_pip=True)
    constraints = base / "lowest.txt"
    constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted(lowest_versions().items())))
    (wheel,) = dist.glob("*.whl")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    pip = [str(base / "venv" / "bin" / "python"), "-m", "pip", "install", "-q"]
    result = subprocess.run(
        [*pip, "--constraint", str(constraints), str(wheel)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    bin_dir = base / "bin"
    bin_dir.mkdir()
    (bin_dir / "deployer").symlink_to(base / "venv" / "bin" / "deployer")
    return bin_dir


def run(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`deployer ARGS` as a user runs it: the entry point on PATH, helm beside it, nothing else."""
    helm_dir = helm_binary(3).parent
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{helm_dir}{os.pathsep}/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "NO_COLOR": "1",
    }
    return subprocess.run(["deployer", *args], check=False, cwd=cwd, env=env, capture_output=True, text=True)


@pytest.mark.slow
def test_build_makes_a_wheel_and_an_sdist_under_the_new_name(dist: Path) -> None:
    assert sorted(p.name for p in dist.iterdir()) == [
        f"helm_deployer-{__version__}-py3-none-any.whl",
        f"helm_deployer-{__version__}.tar.gz",
    ]
    with zipfile.ZipFile(dist / f"helm_deployer-{__version__}-py3-none-any.whl") as wheel:
        names = wheel.namelist()
        metadata = wheel.read(f"helm_deployer-{__version__}.dist-info/METADATA").decode()
        entry_points = wheel.read(f"helm_deployer-{__version__}.dist-info/entry_points.txt").decode()
    assert "deployer/py.typed" in names
    assert not [n for n in names if n.startswith(("tests/", "testing/", "charts/"))]
    assert "Name: helm-deployer" in metadata
    requires = {
        requirement_name(line.split(":", 1)[1].strip())
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    }
    assert requires == set(lowest_versions())
    assert "deployer = deployer.main:main" in entry_points


@pytest.mark.slow
def test_the_lowest_allowed_versions_are_what_got_installed(installed: Path) -> None:
    python = installed.parent / "venv" / "bin" / "python"
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format", "json"], capture_output=True, text=True, check=True
    )
    versions = {canonical(p["name"]): p["version"] for p in json.loads(listed.stdout)}
    assert {n: versions.get(n) for n in lowest_versions()} == lowest_versions()
    assert versions[DISTRIBUTION] == __version__


@pytest.mark.slow
def test_the_installed_command_runs_the_example_from_anywhere(installed: Path, tmp_path: Path) -> None:
    project = copy_example(tmp_path / "project")

    version = run(installed, tmp_path, "--version")
    assert (version.returncode, version.stdout) == (0, f"deployer {__version__}\n"), version.stderr

    validate = run(installed, project, "validate")
    assert validate.returncode == 0, validate.stderr
    assert validate.stdout.startswith("deployer.yaml: ok (3 releases")

    values = run(installed, project, "values", "-e", "prod", "api", "--explain")
    assert values.returncode == 0, values.stderr
    assert "replicaCount = 3    # environments/prod/values.yaml" in values.stdout

    template = run(installed, project, "template", "-e", "dev", "--kube-version", "1.33.0")
    assert template.returncode == 0, template.stderr
    assert "kind: Deployment" in template.stdout

    completion = run(installed, tmp_path, "completion", "bash")  # argcomplete at its lower bound
    assert completion.returncode == 0, completion.stderr
    assert "-F _python_argcomplete deployer" in completion.stdout

    bad = run(installed, tmp_path, "validate")  # no deployer.yaml here: a user error, not a traceback
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr


@pytest.mark.slow
def test_the_installed_command_diffs_against_a_git_base(installed: Path, tmp_path: Path) -> None:
    """gitpython at its lowest version: `diff --base` reads the spec as of a commit."""
    project = copy_example(tmp_path / "project")
    (project / ".gitignore").write_text("charts/*/charts/\n")
    git = ["git", "-C", str(project), "-c", "user.email=t@example.com", "-c", "user.name=T"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    overlay = project / "environments" / "prod" / "values.yaml"
    overlay.write_text(overlay.read_text().replace("replicaCount: 3", "replicaCount: 4"))

    diff = run(installed, project, "diff", "-e", "prod", "--base", "main", "--output", "markdown")
    assert diff.returncode == 0, diff.stderr
    assert "| `replicaCount` | `3` | `4` |" in diff.stdout


class FakeApiServer(BaseHTTPRequestHandler):
    """The two Kubernetes API reads the smoke test makes: /version and the owner=helm Secret list."""

    def do_GET(self) -> None:
        if self.path == "/version":
            body: dict[str, Any] = {"gitVersion": "v1.33.0"}
        elif self.path.startswith("/api/v1/secrets?") and "owner%3Dhelm" in self.path:
            secret = {
                "metadata": {
                    "name": "sh.helm.release.v1.api.v1",
                    "namespace": "shop",
                    "labels": {"owner": "helm", "name": "api"},
                },
                "data": {"release": "e30="},
            }
            body = {"kind": "SecretList", "apiVersion": "v1", "metadata": {}, "items": [secret]}
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def api_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApiServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_the_kubernetes_edge_works_at_the_lowest_lightkube_and_httpx2(
    installed: Path, tmp_path: Path, api_server: str
) -> None:
    """kube.py reaches into lightkube's httpx2 client; read a cluster through it at the lower bounds."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": api_server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "ctx",
            }
        )
    )
    script = (
        "import sys\n"
        "from deployer.kube import Cluster, resolve_target\n"
        "cluster = Cluster(resolve_target(sys.argv[1], None, {}))\n"
        "items, how = cluster.helm_release_secrets(['shop'])\n"
        "print(cluster.version(), how, [i['metadata']['name'] for i in items], cluster.requests)\n"
    )
    python = installed.parent / "venv" / "bin" / "python"
    result = subprocess.run(
        [str(python), "-c", script, str(kubeconfig)],
        check=False,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["v1.33.0", "cluster", "['sh.helm.release.v1.api.v1']", "2"]
