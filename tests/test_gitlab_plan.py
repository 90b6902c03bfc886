"""The GitLab template's merge job fetching the plan its merge request's pipeline saved, against a
loopback server answering the four GET endpoints of GitLab's REST API v4 as GitLab does."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from deployer.ci.gitlab_plan import main

TOKEN = "glpat-read-api-token"
SHA = "4f1c0ffee0d5b1a7e0c0ffee0d5b1a7e0c0ffee0"
PLAN = b'{"format": "deployer-plan"}\n'


class GitLab(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes: dict[str, Any] = {
            f"/api/v4/projects/group%2Fshop/repository/commits/{SHA}/merge_requests": [
                {"iid": 6, "state": "closed"},
                {"iid": 7, "state": "merged"},
            ],
            "/api/v4/projects/group%2Fshop/merge_requests/7/pipelines": [
                {"id": 902, "status": "failed"},
                {"id": 901, "status": "success"},
            ],
            "/api/v4/projects/group%2Fshop/pipelines/901/jobs": [
                {"id": 5, "name": "plan-staging"},
                {"id": 6, "name": "plan-prod"},
            ],
            "/api/v4/projects/group%2Fshop/jobs/6/artifacts/deployer-plan/plan-prod.plan.json": PLAN,
        }
        self.requests: list[str] = []

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api/v4"


class Handler(BaseHTTPRequestHandler):
    server: GitLab

    def do_GET(self) -> None:
        path = self.path.partition("?")[0]
        self.server.requests.append(self.path)
        found = self.server.routes.get(path)
        code, body = (200, found) if found is not None else (404, {"message": "404 Not found"})
        if self.headers.get("PRIVATE-TOKEN") != TOKEN:
            code, body = 401, {"message": "401 Unauthorized"}
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def gitlab(monkeypatch: pytest.MonkeyPatch) -> Iterator[GitLab]:
    server = GitLab()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for key, value in {
        "CI_API_V4_URL": server.api,
        "CI_PROJECT_ID": "group/shop",
        "CI_COMMIT_SHA": SHA,
        "GITLAB_API_TOKEN": TOKEN,
    }.items():
        monkeypatch.setenv(key, value)
    yield server
    server.shutdown()
    server.server_close()


def test_the_merged_requests_newest_successful_plan_job_artifact_is_written(
    gitlab: GitLab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "deployer-plan" / "plan-prod.plan.json"
    assert main(["-e", "prod", "--out", str(out)]) == 0
    assert out.read_bytes() == PLAN
    assert TOKEN not in capsys.readouterr().err


def test_a_commit_of_no_merge_request_is_one_line(
    gitlab: GitLab, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gitlab.routes[f"/api/v4/projects/group%2Fshop/repository/commits/{SHA}/merge_requests"] = []
    assert main(["-e", "prod", "--out", str(tmp_path / "p.json")]) == 1
    assert capsys.readouterr().err == (
        f"deployer-plan: error: commit {SHA[:12]} belongs to no merge request: nothing reviewed to apply\n"
    )
    assert not (tmp_path / "p.json").exists()


def test_a_pipeline_without_the_plan_job_names_it(
    gitlab: GitLab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-e", "dev", "--out", str(tmp_path / "p.json")]) == 1
    assert capsys.readouterr().err == (
        "deployer-plan: error: pipeline 901 of merge request !7 has no successful job 'plan-dev'\n"
    )


def test_a_bad_token_is_the_http_status_never_the_token(
    gitlab: GitLab, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITLAB_API_TOKEN", "glpat-wrong")
    assert main(["-e", "prod", "--out", str(tmp_path / "p.json")]) == 1
    err = capsys.readouterr().err
    assert "HTTP 401 Unauthorized" in err
    assert "glpat-wrong" not in err
