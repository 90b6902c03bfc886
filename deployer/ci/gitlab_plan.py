"""The merge job's half of plan-on-MR / apply-the-plan-on-merge: fetch the plan that the merged merge
request's pipeline saved, so that `deployer apply --plan` applies what was reviewed.

    python -m deployer.ci.gitlab_plan --environment ENV [--job NAME] [--out FILE]

From the pushed commit (CI_COMMIT_SHA) to its merge request, to that merge request's newest
successful pipeline, to its job NAME (default `plan-ENV`), to the artifact file
deployer-plan/plan-ENV.plan.json: four GET requests of GitLab's REST API v4, standard library only.
CI_API_V4_URL and CI_PROJECT_ID say where; GITLAB_API_TOKEN (read_api scope is enough) says who,
sent as PRIVATE-TOKEN and never printed. Exit 0 with the file written, 1 with one line saying
which step found nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

TIMEOUT = 30.0


class FetchError(Exception):
    pass


class Project(NamedTuple):
    api: str  # CI_API_V4_URL
    project: str  # CI_PROJECT_ID
    token: str

    def get(self, suffix: str) -> bytes:
        project = urllib.parse.quote(self.project, safe="")
        url = f"{self.api.rstrip('/')}/projects/{project}/{suffix}"
        req = urllib.request.Request(url)
        req.add_header("PRIVATE-TOKEN", self.token)
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as response:
                body: bytes = response.read()
                return body
        except urllib.error.HTTPError as exc:
            path = urllib.parse.urlsplit(url).path
            raise FetchError(f"GitLab API GET {path}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise FetchError(f"cannot reach the GitLab API at {self.api}: {exc}") from None

    def get_json(self, suffix: str) -> Any:
        return json.loads(self.get(suffix) or b"null")


def fetch(gitlab: Project, commit: str, job: str, artifact: str) -> bytes:
    requests = [r for r in gitlab.get_json(f"repository/commits/{commit}/merge_requests") or [] if r]
    merged = [r for r in requests if r.get("state") == "merged"] or requests
    if not merged:
        raise FetchError(f"commit {commit[:12]} belongs to no merge request: nothing reviewed to apply")
    iid = merged[0]["iid"]
    pipelines = gitlab.get_json(f"merge_requests/{iid}/pipelines") or []
    done = [p for p in pipelines if p.get("status") == "success"]
    if not done:
        raise FetchError(f"merge request !{iid} has no successful pipeline: nothing reviewed to apply")
    jobs = gitlab.get_json(f"pipelines/{done[0]['id']}/jobs?scope[]=success&per_page=100") or []
    found = [j for j in jobs if j.get("name") == job]
    if not found:
        raise FetchError(f"pipeline {done[0]['id']} of merge request !{iid} has no successful job '{job}'")
    quoted = urllib.parse.quote(artifact)
    return gitlab.get(f"jobs/{found[0]['id']}/artifacts/{quoted}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deployer.ci.gitlab_plan", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--environment", "-e", required=True)
    parser.add_argument("--job", default=None, help="the merge request's plan job (default: plan-ENV)")
    parser.add_argument("--out", default=None, type=Path, help="default: deployer-plan/plan-ENV.plan.json")
    args = parser.parse_args(argv)
    env = os.environ
    needed = ("CI_API_V4_URL", "CI_PROJECT_ID", "CI_COMMIT_SHA", "GITLAB_API_TOKEN")
    missing = [v for v in needed if not env.get(v)]
    if missing:
        print(f"deployer-plan: error: {', '.join(missing)} not set", file=sys.stderr)
        return 1
    artifact = f"deployer-plan/plan-{args.environment}.plan.json"
    out = args.out or Path(artifact)
    gitlab = Project(env["CI_API_V4_URL"], env["CI_PROJECT_ID"], env["GITLAB_API_TOKEN"])
    try:
        data = fetch(gitlab, env["CI_COMMIT_SHA"], args.job or f"plan-{args.environment}", artifact)
    except FetchError as exc:
        print(f"deployer-plan: error: {exc}", file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    print(f"deployer-plan: the reviewed plan is in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
