"""`deployer template` with the real helm binaries (Helm 3 and Helm 4) on the repository's example."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from testing.cli import run
from testing.example import copy_example
from testing.fakes import RecordingHelm, fake_helm

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.helm


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of the repository's example (without built chart dependencies)."""
    return copy_example(tmp_path / "example")


def documents(text: str) -> list[dict[str, object]]:
    return [d for d in yaml.safe_load_all(text) if d]


def test_prod_renders_every_release_in_needs_order_with_prod_values(
    example: Path, helm: Path, cache: Path
) -> None:
    result = run(["template", "-e", "prod"], example, {"DEPLOYER_HELM": str(helm), "API_KEY": None})
    assert result.code == 0, result.err
    headers = [line for line in result.out.splitlines() if line.startswith("# release:")]
    assert headers == [
        "# release: shop/platform-config (chart platform-config)",
        "# release: shop/api (chart web)",
        "# release: shop/worker (chart worker)",
    ]
    docs = {(d["kind"], d["metadata"]["name"]): d for d in documents(result.out)}  # type: ignore[index]
    api = docs[("Deployment", "api")]
    assert api["spec"]["replicas"] == 3  # type: ignore[index]
    container = api["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
    # prod's explicit null removed the chart's memory limit; the request stays.
    assert container["resources"] == {"requests": {"cpu": "50m", "memory": "64Mi"}}
    assert docs[("ConfigMap", "platform-config")]["data"]["ENVIRONMENT"] == "prod"  # type: ignore[index]


def test_output_is_the_same_at_any_concurrency(example: Path, helm: Path, cache: Path) -> None:
    env = {"DEPLOYER_HELM": str(helm)}
    one = run(["template", "-e", "staging", "--concurrency", "1"], example, env)
    many = run(["template", "-e", "staging", "--concurrency", "8"], example, env)
    assert one.code == many.code == 0
    assert one.out == many.out


def test_each_release_gets_one_private_values_file_removed_afterwards(
    example: Path, helm: Path, cache: Path, tmp_path: Path
) -> None:
    recorder = RecordingHelm(helm, tmp_path / "recorder")
    result = run(["template", "-e", "dev"], example, {"DEPLOYER_HELM": str(recorder.path)})
    assert result.code == 0, result.err
    templates = [argv for argv in recorder.calls() if argv[0] == "template"]
    assert len(templates) == 3
    assert all(argv.count("--values") == 1 for argv in templates)
    modes = recorder.modes.read_text().split("\n")
    files = [line.split(" ", 1) for line in modes if line.endswith(".values.yaml")]
    dirs = [line.split(" ", 1) for line in modes if line and not line.endswith(".values.yaml")]
    assert {mode for mode, _ in files} == {"600"}
    assert {mode for mode, _ in dirs} == {"700"}
    assert not any(Path(path).exists() for _, path in files + dirs)
    # The secret reaches helm only inside the 0600 file, never on its argv.
    assert not any("dev-api-key" in arg for argv in recorder.calls() for arg in argv)


def test_an_output_dir_that_is_a_file_is_refused_before_anything_renders(
    example: Path, helm: Path, cache: Path, tmp_path: Path
) -> None:
    recorder = RecordingHelm(helm, tmp_path / "recorder")
    a_file = tmp_path / "a-file"
    a_file.write_text("keep me\n")
    result = run(
        ["template", "-e", "dev", "--output-dir", str(a_file)], example, {"DEPLOYER_HELM": str(recorder.path)}
    )
    assert result.code == 1
    assert result.err.startswith(f"error: --output-dir {a_file} exists and is not a directory\n")
    under = run(
        ["template", "-e", "dev", "--output-dir", str(a_file / "out")],
        example,
        {"DEPLOYER_HELM": str(recorder.path)},
    )
    assert under.code == 1
    assert under.err.startswith(
        f"error: --output-dir {a_file / 'out'} cannot be created: {a_file} is not a directory you can "
        "write to\n"
    )
    assert recorder.calls() == []
    assert a_file.read_text() == "keep me\n"


def test_chart_dependencies_are_built_once_when_missing(
    example: Path, helm: Path, cache: Path, tmp_path: Path
) -> None:
    recorder = RecordingHelm(helm, tmp_path / "recorder")
    env = {"DEPLOYER_HELM": str(recorder.path)}
    assert not list((example / "charts" / "web").rglob("*.tgz"))
    assert run(["template", "-e", "dev"], example, env).code == 0
    assert (example / "charts" / "web" / "charts" / "common-0.1.0.tgz").is_file()
    assert recorder.commands().count("dependency build") == 1
    assert run(["template", "-e", "dev"], example, env).code == 0
    assert recorder.commands().count("dependency build") == 1


def test_selector_and_output_dir_write_one_file_per_selected_release(
    example: Path, helm: Path, cache: Path, tmp_path: Path
) -> None:
    out = tmp_path / "rendered"
    result = run(
        ["template", "-e", "dev", "-l", "tier=backend", "--output-dir", str(out)],
        example,
        {"DEPLOYER_HELM": str(helm)},
    )
    assert result.code == 0, result.err
    assert sorted(p.name for p in out.iterdir()) == ["shop--api.yaml", "shop--worker.yaml"]
    assert result.out == ""


def test_installed_false_in_an_environment_leaves_the_release_out(
    example: Path, helm: Path, cache: Path
) -> None:
    spec = example / "deployer.yaml"
    spec.write_text(
        spec.read_text().replace(
            "  staging: {}", "  staging:\n    releases:\n      worker: {installed: false}"
        )
    )
    result = run(["template", "-e", "staging"], example, {"DEPLOYER_HELM": str(helm)})
    assert result.code == 0, result.err
    assert "# release: shop/worker" not in result.out
    assert "# release: shop/api" in result.out


def test_a_chart_that_fails_to_render_names_the_release_and_shows_helms_message(
    example: Path, helm: Path, cache: Path
) -> None:
    broken = example / "charts" / "platform-config" / "templates" / "broken.yaml"
    broken.write_text("{{ .Values.nope.deeper }}\n")
    result = run(["template", "-e", "dev"], example, {"DEPLOYER_HELM": str(helm)})
    assert result.code == 1
    failed = "\nerror: release shop/platform-config: helm exited with code 1: helm template platform-config "
    assert failed in result.err
    assert "nil pointer evaluating interface {}.deeper" in result.err
    assert "Traceback" not in result.err


def test_helms_error_never_shows_a_sensitive_value_it_quotes(example: Path, helm: Path, cache: Path) -> None:
    (example / "charts" / "web" / "templates" / "broken.yaml").write_text(
        '{{ fail (printf "cannot log in with %s" .Values.secret.apiKey) }}\n'
    )
    result = run(["--debug", "template", "-e", "dev"], example, {"DEPLOYER_HELM": str(helm), "API_KEY": None})
    assert result.code == 1
    assert "cannot log in with <sensitive>" in result.err
    assert "dev-api-key" not in result.err + result.out


def test_missing_helm_says_where_it_looked(example: Path, cache: Path) -> None:
    result = run(["template", "-e", "dev"], example, {"DEPLOYER_HELM": "/nonexistent/helm"})
    assert result.code == 1
    assert result.err == (
        "error: helm not found (looked in DEPLOYER_HELM=/nonexistent/helm)\n"
        "  hint: install helm >= 3.17.0 (Helm 3 or 4), or point --helm / DEPLOYER_HELM at it\n"
    )


def test_too_old_helm_names_the_version_needed(example: Path, cache: Path, tmp_path: Path) -> None:
    old = fake_helm(tmp_path / "old", "v3.10.0")
    result = run(["template", "-e", "dev", "--helm", str(old)], example)
    assert result.code == 1
    assert result.err == (
        f"error: {old} reports version 'v3.10.0'; deployer needs helm >= 3.17.0\n"
        f"  hint: install a newer helm (found via --helm {old}), or point --helm / DEPLOYER_HELM at one\n"
    )
