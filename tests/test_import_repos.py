"""`deployer import helmfile` and the chart repositories a helmfile leaves to helm: a chart that
names a repository no state file declares is found where helm would find it (the user's helm
repository config), else in deployer's table of well-known public repositories, and written into
the spec with a note; a name found nowhere stays a loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from testing.chartrepo import published
from testing.cli import run
from testing.helmfile import helm_env, project_with, written

pytestmark = pytest.mark.helm

NESTED = """\
releases:
  - name: pinned
    namespace: apps
    chart: mine/hello
    version: 1.0.0
  - name: latest
    namespace: apps
    chart: mine/hello
"""


def helm_config(tmp_path: Path, repos: dict[str, str]) -> Path:
    """A helm repository config as `helm repo add` writes it."""
    path = tmp_path / "user-helm" / "repositories.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = [
        {
            "name": n,
            "url": u,
            "caFile": "",
            "certFile": "",
            "keyFile": "",
            "username": "",
            "password": "",
            "insecure_skip_tls_verify": False,
            "pass_credentials_all": False,
        }
        for n, u in repos.items()
    ]
    path.write_text(
        yaml.safe_dump({"apiVersion": "", "generated": "0001-01-01T00:00:00Z", "repositories": entries})
    )
    return path


@pytest.mark.parametrize("templated", [False, True], ids=["plain", "templated"])
def test_a_repository_only_the_users_helm_config_names_is_written_where_its_release_lives(
    tmp_path: Path, helm: Path, helm3: Path, helmfile: Path, cache: Path, *, templated: bool
) -> None:
    with published(tmp_path, helm3, ("1.0.0", "1.1.0")) as repo:
        nested = "apps/helmfile.yaml.gotmpl" if templated else "apps/helmfile.yaml"
        project = project_with(
            tmp_path,
            {
                "helmfile.yaml": f"""\
                environments:
                  dev: {{}}
                ---
                helmfiles:
                  - {nested}
                releases:
                  - name: web
                    namespace: apps
                    chart: ./charts/echo
                """,
                nested: "environments:\n  dev: {}\n---\n" + NESTED.replace("apps", "{{ .Environment.Name }}")
                if templated
                else NESTED,
            },
        )
        config = helm_config(tmp_path, {"mine": repo.url, "other": "https://charts.example.com"})
        env = helm_env(tmp_path, {"HELM_REPOSITORY_CONFIG": str(config)})
        result = run(["import", "helmfile", "--helmfile", str(helmfile), "--helm", str(helm3)], project, env)
        assert result.code == 0, result.err
        files = written(project)
        assert "repositories" not in yaml.safe_load(files["deployer.yaml"])
        included = yaml.safe_load(files["deployer.d/apps.yaml"])
        assert included["repositories"] == [{"name": "mine", "url": repo.url}]
        assert [r["name"] for r in included["releases"]] == ["pinned", "latest"]
        assert (
            f"{nested}:{7 if templated else 4}: releases[pinned].chart: chart mine/hello names the "
            "repository 'mine', which no state file declares (helmfile leaves it to helm's own repository "
            "config): written under "
            f"repositories: as mine with url {repo.url}, from your helm repository config ({config}); "
            "check that it is the repository you deploy from"
        ) in result.err
        assert "import: everything was carried over" in result.err  # notes only
        assert (
            "## Notes" in files["IMPORT-REPORT.md"]
            and "your helm repository config" in files["IMPORT-REPORT.md"]
        )
        deployer_env = {"DEPLOYER_HELM": str(helm)}
        assert run(["lock"], project, deployer_env).code == 0
        checked = run(["validate"], project, deployer_env)
        assert checked.code == 0, checked.err
        rendered = run(["template", "-e", "dev"], project, deployer_env)
        assert rendered.code == 0, rendered.err
        charts = {
            d["metadata"]["name"]: d["metadata"]["labels"]["chart"]
            for d in yaml.safe_load_all(rendered.out)
            if d and d["kind"] == "ConfigMap" and "chart" in d["metadata"].get("labels", {})
        }
        assert charts == {"web": "echo-0.1.0", "pinned": "hello-1.0.0", "latest": "hello-1.1.0"}


def test_a_well_known_repository_comes_from_the_table_and_an_unknown_one_stays_a_loss(tmp_path: Path) -> None:
    project = project_with(
        tmp_path,
        {
            "helmfile.yaml": """\
            releases:
              - name: prometheus
                namespace: monitoring
                chart: prometheus-community/prometheus
                version: 27.1.0
              - name: grafana
                namespace: monitoring
                chart: grafana/grafana
                version: 8.8.2
              - name: thing
                namespace: monitoring
                chart: acme/thing
                version: 1.0.0
            """
        },
    )
    env = helm_env(tmp_path, {"HELM_REPOSITORY_CONFIG": str(tmp_path / "no-such-repositories.yaml")})
    result = run(["import", "helmfile"], project, env)
    assert result.code == 0, result.err
    spec = yaml.safe_load((project / "deployer.yaml").read_text())
    assert spec["repositories"] == [
        {"name": "prometheus-community", "url": "https://prometheus-community.github.io/helm-charts"},
        {"name": "grafana", "url": "https://grafana.github.io/helm-charts"},
    ]
    assert [r["name"] for r in spec["releases"]] == ["prometheus", "grafana"]
    assert (
        "helmfile.yaml:4: releases[prometheus].chart: chart prometheus-community/prometheus names the "
        "repository 'prometheus-community', which no state file declares (helmfile leaves it to helm's own "
        "repository config): written under repositories: as prometheus-community with url "
        "https://prometheus-community.github.io/helm-charts, from deployer's table of well-known public "
        "chart repositories; check that it is the repository you deploy from"
    ) in result.err
    assert "import: 1 item(s) not carried over as they were:" in result.err
    assert (
        "helmfile.yaml:12: releases[thing].chart: chart acme/thing names the repository 'acme', which is "
        "not declared under repositories:; release skipped"
    ) in result.err
    checked = run(["validate"], project)
    assert checked.code == 0, checked.err


def test_the_users_helm_config_is_found_where_helm_looks_for_it(tmp_path: Path) -> None:
    """$HELM_REPOSITORY_CONFIG, else $HELM_CONFIG_HOME, else helm/ under $XDG_CONFIG_HOME, else
    ~/.config/helm (helm's pkg/helmpath on Linux)."""
    project = project_with(
        tmp_path,
        {"helmfile.yaml": "releases:\n  - name: x\n    chart: mine/x\n    version: 1.0.0\n"},
    )
    home = tmp_path / "home"
    for where, env in [
        (home / ".config" / "helm", {"HOME": str(home)}),
        (tmp_path / "xdg" / "helm", {"HOME": str(home), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}),
        (tmp_path / "helm-config", {"HOME": str(home), "HELM_CONFIG_HOME": str(tmp_path / "helm-config")}),
    ]:
        url = f"https://charts.example.com/{where.parent.name}"
        where.mkdir(parents=True, exist_ok=True)
        (where / "repositories.yaml").write_text(
            yaml.safe_dump({"repositories": [{"name": "mine", "url": url}]})
        )
        unset = {"HELM_REPOSITORY_CONFIG": None, "HELM_CONFIG_HOME": None, "XDG_CONFIG_HOME": None}
        result = run(["import", "helmfile"], project, {**unset, **env})
        assert result.code == 0, result.err
        spec = yaml.safe_load((project / "deployer.yaml").read_text())
        assert spec["repositories"] == [{"name": "mine", "url": url}], env
        for name in ("deployer.yaml", "IMPORT-REPORT.md"):
            (project / name).unlink()


def test_a_repository_only_one_environments_release_names_is_written_for_the_spec(
    tmp_path: Path, helm3: Path, helmfile: Path
) -> None:
    project = project_with(
        tmp_path,
        {
            "helmfile.yaml.gotmpl": """\
            environments:
              development: {}
              production: {}
            ---
            releases:
              - name: web
                namespace: apps
                chart: ./charts/echo
            {{- if eq .Environment.Name "production" }}
              - name: prometheus
                namespace: monitoring
                chart: prometheus-community/prometheus
                version: 27.1.0
            {{- end }}
            """
        },
    )
    env = helm_env(tmp_path, {"HELM_REPOSITORY_CONFIG": str(tmp_path / "none.yaml")})
    result = run(["import", "helmfile", "--helmfile", str(helmfile), "--helm", str(helm3)], project, env)
    assert result.code == 0, result.err
    spec = yaml.safe_load((project / "deployer.yaml").read_text())
    assert spec["repositories"] == [
        {"name": "prometheus-community", "url": "https://prometheus-community.github.io/helm-charts"}
    ]
    assert spec["environments"]["development"]["releases"] == {"prometheus": {"installed": False}}
    checked = run(["validate"], project)
    assert checked.code == 0, checked.err
