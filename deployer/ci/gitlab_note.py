"""One merge-request note per environment, updated in place on every push.

    python -m deployer.ci.gitlab_note --environment ENV --body plan.md

The note starts with a hidden marker, `<!-- deployer-plan: ENV -->`; the first note carrying it is
updated (PUT), else one is created (POST). GitLab has no shared component for this (GitHub has the
sticky-comment action), hence this small client: the three notes endpoints of the REST API v4,
standard library only. The job's CI_API_V4_URL, CI_PROJECT_ID and CI_MERGE_REQUEST_IID say where;
GITLAB_API_TOKEN (a project or personal access token with the `api` scope: CI_JOB_TOKEN cannot
write notes) says who, sent as PRIVATE-TOKEN and never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

TIMEOUT = 30.0


class NoteError(Exception):
    pass


def marker(environment: str) -> str:
    return f"<!-- deployer-plan: {environment} -->"


class Notes(NamedTuple):
    """The notes of one merge request."""

    api: str  # CI_API_V4_URL, e.g. https://gitlab.example.com/api/v4
    project: str  # CI_PROJECT_ID (a number, or a path such as group/project)
    merge_request: str  # CI_MERGE_REQUEST_IID
    token: str

    def url(self, suffix: str = "") -> str:
        project = urllib.parse.quote(self.project, safe="")
        return f"{self.api.rstrip('/')}/projects/{project}/merge_requests/{self.merge_request}/notes{suffix}"

    def request(self, method: str, url: str, body: Mapping[str, Any] | None = None) -> tuple[Any, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("PRIVATE-TOKEN", self.token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as response:
                return json.loads(response.read() or b"null"), response.headers
        except urllib.error.HTTPError as exc:
            detail = " ".join(exc.read().decode(errors="replace").split())[:300]
            path = urllib.parse.urlsplit(url).path
            raise NoteError(f"GitLab API {method} {path}: HTTP {exc.code} {exc.reason}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise NoteError(f"cannot reach the GitLab API at {self.api}: {exc}") from None

    def all(self) -> list[dict[str, Any]]:
        notes: list[dict[str, Any]] = []
        page = "1"
        while page:
            batch, headers = self.request("GET", self.url(f"?per_page=100&sort=asc&page={page}"))
            notes += batch
            page = headers.get("X-Next-Page", "")
        return notes

    def upsert(self, environment: str, body: str) -> tuple[str, int]:
        """('created' | 'updated', the note's id)."""
        text = f"{marker(environment)}\n{body}"
        for note in self.all():
            if marker(environment) in str(note.get("body", "")) and not note.get("system"):
                self.request("PUT", self.url(f"/{note['id']}"), {"body": text})
                return "updated", int(note["id"])
        created, _ = self.request("POST", self.url(), {"body": text})
        return "created", int(created["id"])


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="python -m deployer.ci.gitlab_note", description="Create or update this environment's MR note."
    )
    parser.add_argument("--environment", "-e", required=True)
    parser.add_argument("--body", required=True, type=Path, help="the note's Markdown (deployer's plan)")
    args = parser.parse_args(argv)
    needed = ["CI_API_V4_URL", "CI_PROJECT_ID", "CI_MERGE_REQUEST_IID", "GITLAB_API_TOKEN"]
    missing = [name for name in needed if not environ.get(name)]
    if missing:
        print(
            f"deployer-note: error: {', '.join(missing)} not set (run in a merge request pipeline; "
            "GITLAB_API_TOKEN is a CI/CD variable holding a token with the api scope)",
            file=sys.stderr,
        )
        return 1
    notes = Notes(*(environ[name] for name in needed))
    try:
        done, note_id = notes.upsert(args.environment, args.body.read_text())
    except (NoteError, OSError) as exc:
        print(f"deployer-note: error: {exc}", file=sys.stderr)
        return 1
    print(f"deployer-note: {done} note {note_id} for {args.environment}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
