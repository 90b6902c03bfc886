"""The pull-request plan job: make sure the base commit is in the (usually shallow) clone, validate,
then write the plan as Markdown (for the PR comment) and JSON (for later steps), and say whether
anything would change.

    python -m deployer.ci.plan --environment ENV [--base-ref BRANCH] [--out-dir DIR] [--save-plan]

Without KUBECONFIG the plan is offline: the spec as of origin/BRANCH against the checkout
(`deployer diff --base`). With KUBECONFIG it is against the cluster, and --save-plan also saves
the plan for `deployer apply --plan` on merge (DIR/plan-ENV.plan.json). Outputs (`has-changes`,
`plan-markdown`, `plan-json`, and `plan-file` with --save-plan) go to $GITHUB_OUTPUT when set,
and always to DIR/plan.env as DEPLOYER_HAS_CHANGES=... lines (a GitLab dotenv report). Exit 0
with a plan (changes or not), 1 on any error, with deployer's own message on stderr.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


class PlanError(Exception):
    pass


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], check=False, capture_output=True, text=True)


def ensure_base(branch: str, remote: str = "origin") -> str:
    """The ref `deployer diff --base` should read, fetching the branch's tip when the clone lacks
    it (actions/checkout fetches one commit; GitLab fetches only the merge request's branch)."""
    ref = f"{remote}/{branch}"
    if _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").returncode == 0:
        return ref
    shallow = _git("rev-parse", "--is-shallow-repository").stdout.strip() == "true"
    depth = ["--depth=1"] if shallow else []
    refspec = f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}"
    print(f"deployer-plan: git fetch {remote} {branch} (the base of the comparison)", file=sys.stderr)
    fetched = _git("fetch", "--no-tags", *depth, remote, refspec)
    if fetched.returncode != 0:
        raise PlanError(f"cannot fetch base branch '{branch}' from {remote}: {fetched.stderr.strip()}")
    return ref


def deployer(*args: str, stdout: Path | None = None) -> int:
    command = [sys.executable, "-m", "deployer", *args]
    print(f"deployer-plan: deployer {' '.join(args)}", file=sys.stderr)
    if stdout is None:
        return subprocess.run(command, check=False).returncode
    with stdout.open("w") as out:
        return subprocess.run(command, check=False, stdout=out).returncode


def plan(
    environment: str, base_ref: str | None, out_dir: Path, environ: dict[str, str], *, save: bool = False
) -> bool:
    """Writes out_dir/plan-ENV.md and .json (and .plan.json when `save`); returns whether anything
    would change."""
    if save and not environ.get("KUBECONFIG"):
        raise PlanError(
            "--save-plan needs the cluster (a saved plan records the revisions it was planned "
            "against): set KUBECONFIG, or drop --save-plan for an offline plan"
        )
    if environ.get("KUBECONFIG"):
        against: list[str] = []
    elif base_ref:
        against = ["--base", ensure_base(base_ref)]
    else:
        raise PlanError(
            "no KUBECONFIG and no base branch: give a base ref (a pull or merge request's target) "
            "for an offline plan, or a kubeconfig to plan against the cluster"
        )
    if deployer("validate", "-e", environment) != 0:
        raise PlanError("the spec is not valid (see above)")
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown, json_path = out_dir / f"plan-{environment}.md", out_dir / f"plan-{environment}.json"
    diff = ["diff", "-e", environment, *against, "--detailed-exitcode"]
    code = deployer(*diff, "--output", "markdown", stdout=markdown)
    if code not in (0, 2):
        raise PlanError(f"deployer diff failed (exit {code})")
    saving = ["--save-plan", str(plan_file(out_dir, environment))] if save else []
    json_code = deployer(*diff, *saving, "--output", "json", stdout=json_path)
    if json_code != code:
        raise PlanError(f"deployer diff --output json disagreed (exit {json_code}, markdown {code})")
    return code == 2


def plan_file(out_dir: Path, environment: str) -> Path:
    return out_dir / f"plan-{environment}.plan.json"


def write_outputs(
    out_dir: Path, environment: str, has_changes: bool, environ: dict[str, str], save: bool = False
) -> None:
    outputs = {
        "has-changes": "true" if has_changes else "false",
        "plan-markdown": str((out_dir / f"plan-{environment}.md").resolve()),
        "plan-json": str((out_dir / f"plan-{environment}.json").resolve()),
    }
    if save:
        outputs["plan-file"] = str(plan_file(out_dir, environment).resolve())
    if environ.get("GITHUB_OUTPUT"):
        with open(environ["GITHUB_OUTPUT"], "a") as f:
            f.writelines(f"{k}={v}\n" for k, v in outputs.items())
    dotenv = "".join(f"DEPLOYER_{k.upper().replace('-', '_')}={v}\n" for k, v in outputs.items())
    (out_dir / "plan.env").write_text(dotenv)
    print(dotenv, end="")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployer.ci.plan", description=__doc__.split("\n")[0])
    parser.add_argument("--environment", "-e", required=True)
    parser.add_argument("--base-ref", default="", help="the target branch (offline plan without KUBECONFIG)")
    parser.add_argument("--out-dir", default="deployer-plan", type=Path)
    parser.add_argument(
        "--save-plan",
        action="store_true",
        help="also save the plan for `deployer apply --plan` (needs KUBECONFIG)",
    )
    args = parser.parse_args(argv)
    environ = dict(os.environ)
    try:
        base = args.base_ref or None
        has_changes = plan(args.environment, base, args.out_dir, environ, save=args.save_plan)
    except PlanError as exc:
        print(f"deployer-plan: error: {exc}", file=sys.stderr)
        return 1
    write_outputs(args.out_dir, args.environment, has_changes, environ, args.save_plan)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
