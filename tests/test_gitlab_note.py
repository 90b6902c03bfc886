"""The GitLab template's note script against a loopback server speaking the three notes endpoints
of GitLab's REST API v4 (list with pagination, create, update), as GitLab answers them."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from deployer.ci.gitlab_note import main

TOKEN = "glpat-secret-token"
NOTES_PATH = re.compile(
    r"^/api/v4/projects/(?P<project>[^/]+)/merge_requests/(?P<mr>\d+)/notes(?:/(?P<id>\d+))?$"
)


class GitLab(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), NotesHandler)
        self.notes: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.requests: list[str] = []
        self.next_id = 100

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api/v4"


class NotesHandler(BaseHTTPRequestHandler):
    server: GitLab

    def _reply(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _route(self) -> tuple[list[dict[str, Any]], str | None, dict[str, str]] | None:
        path, _, query = self.path.partition("?")
        self.server.requests.append(f"{self.command} {self.path}")
        if self.headers.get("PRIVATE-TOKEN") != TOKEN:
            self._reply(401, {"message": "401 Unauthorized"})
            return None
        match = NOTES_PATH.match(path)
        if not match:
            self._reply(404, {"message": "404 Not found"})
            return None
        params = dict(p.split("=", 1) for p in query.split("&") if p)
        return self.server.notes.setdefault((match["project"], match["mr"]), []), match["id"], params

    def _body(self) -> dict[str, Any]:
        assert self.headers["Content-Type"] == "application/json"
        body: dict[str, Any] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        return body

    def do_GET(self) -> None:
        routed = self._route()
        if routed is None:
            return
        notes, _, params = routed
        per_page, page = int(params.get("per_page", 20)), int(params.get("page", 1))
        chunk = notes[(page - 1) * per_page : page * per_page]
        more = page * per_page < len(notes)
        self._reply(200, chunk, {"X-Next-Page": str(page + 1) if more else "", "X-Page": str(page)})

    def do_POST(self) -> None:
        routed = self._route()
        if routed is None:
            return
        notes, _, _ = routed
        self.server.next_id += 1
        note = {"id": self.server.next_id, "body": self._body()["body"], "system": False}
        notes.append(note)
        self._reply(201, note)

    def do_PUT(self) -> None:
        routed = self._route()
        if routed is None:
            return
        notes, note_id, _ = routed
        found = [n for n in notes if str(n["id"]) == note_id]
        if not found:
            self._reply(404, {"message": "404 Note Not Found"})
            return
        found[0]["body"] = self._body()["body"]
        self._reply(200, found[0])

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def gitlab() -> Iterator[GitLab]:
    server = GitLab()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def environ(gitlab: GitLab, **overrides: str) -> dict[str, str]:
    return {
        "CI_API_V4_URL": gitlab.api,
        "CI_PROJECT_ID": "group/shop",
        "CI_MERGE_REQUEST_IID": "7",
        "GITLAB_API_TOKEN": TOKEN,
        **overrides,
    }


def post(gitlab: GitLab, tmp_path: Path, env: str, text: str, **overrides: str) -> int:
    body = tmp_path / f"plan-{env}.md"
    body.write_text(text)
    return main(["--environment", env, "--body", str(body)], environ(gitlab, **overrides))


def mr_notes(gitlab: GitLab) -> list[dict[str, Any]]:
    return gitlab.notes.get(("group%2Fshop", "7"), [])


def test_the_first_push_creates_one_note_with_the_hidden_marker(gitlab: GitLab, tmp_path: Path) -> None:
    assert post(gitlab, tmp_path, "prod", "### deployer plan for `prod`\n1 to upgrade\n") == 0

    (note,) = mr_notes(gitlab)
    assert note["body"] == "<!-- deployer-plan: prod -->\n### deployer plan for `prod`\n1 to upgrade\n"
    assert gitlab.requests[-1] == "POST /api/v4/projects/group%2Fshop/merge_requests/7/notes"


def test_later_pushes_update_that_note_in_place(
    gitlab: GitLab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    post(gitlab, tmp_path, "prod", "first plan")
    first_id = mr_notes(gitlab)[0]["id"]

    assert post(gitlab, tmp_path, "prod", "second plan") == 0
    assert post(gitlab, tmp_path, "prod", "third plan") == 0

    assert [(n["id"], n["body"]) for n in mr_notes(gitlab)] == [
        (first_id, "<!-- deployer-plan: prod -->\nthird plan")
    ]
    assert gitlab.requests[-1] == f"PUT /api/v4/projects/group%2Fshop/merge_requests/7/notes/{first_id}"
    assert f"deployer-note: updated note {first_id} for prod" in capsys.readouterr().err


def test_each_environment_keeps_its_own_note_and_other_notes_are_left_alone(
    gitlab: GitLab, tmp_path: Path
) -> None:
    mr_notes_list = gitlab.notes.setdefault(("group%2Fshop", "7"), [])
    mr_notes_list.append({"id": 1, "body": "LGTM, but see <!-- deployer-plan: prod-eu -->", "system": False})
    mr_notes_list.append({"id": 2, "body": "added 1 commit <!-- deployer-plan: prod -->", "system": True})

    post(gitlab, tmp_path, "prod", "prod plan")
    post(gitlab, tmp_path, "staging", "staging plan")
    post(gitlab, tmp_path, "prod", "prod plan 2")

    bodies = {n["id"]: n["body"] for n in mr_notes(gitlab)}
    assert bodies[1] == "LGTM, but see <!-- deployer-plan: prod-eu -->"
    assert bodies[2] == "added 1 commit <!-- deployer-plan: prod -->"
    assert sorted(b for i, b in bodies.items() if i > 2) == [
        "<!-- deployer-plan: prod -->\nprod plan 2",
        "<!-- deployer-plan: staging -->\nstaging plan",
    ]


def test_the_marker_is_found_beyond_the_first_page(gitlab: GitLab, tmp_path: Path) -> None:
    discussion = [{"id": i, "body": f"comment {i}", "system": False} for i in range(1, 151)]
    gitlab.notes[("group%2Fshop", "7")] = discussion
    post(gitlab, tmp_path, "prod", "plan")  # created after 150 others: on page 2 of 100
    gitlab.requests.clear()

    post(gitlab, tmp_path, "prod", "plan 2")

    assert len(mr_notes(gitlab)) == 151
    assert [r.split("?")[0].split()[0] for r in gitlab.requests] == ["GET", "GET", "PUT"]
    assert "page=2" in gitlab.requests[1]


def test_a_refused_token_fails_with_the_status_and_never_prints_the_token(
    gitlab: GitLab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert post(gitlab, tmp_path, "prod", "plan", GITLAB_API_TOKEN="wrong-token-value") == 1

    err = capsys.readouterr().err
    assert "GitLab API GET /api/v4/projects/group%2Fshop/merge_requests/7/notes: HTTP 401" in err
    assert "wrong-token-value" not in err
    assert gitlab.notes == {}


def test_outside_a_merge_request_pipeline_it_names_what_is_missing(
    gitlab: GitLab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert post(gitlab, tmp_path, "prod", "plan", CI_MERGE_REQUEST_IID="", GITLAB_API_TOKEN="") == 1

    assert "CI_MERGE_REQUEST_IID, GITLAB_API_TOKEN not set" in capsys.readouterr().err
    assert gitlab.requests == []


def test_an_unreachable_gitlab_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = tmp_path / "plan.md"
    body.write_text("plan")
    env = {
        "CI_API_V4_URL": "http://127.0.0.1:9/api/v4",
        "CI_PROJECT_ID": "1",
        "CI_MERGE_REQUEST_IID": "1",
        "GITLAB_API_TOKEN": TOKEN,
    }

    assert main(["-e", "prod", "--body", str(body)], env) == 1

    assert "cannot reach the GitLab API at http://127.0.0.1:9/api/v4" in capsys.readouterr().err
