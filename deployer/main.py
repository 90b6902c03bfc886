"""Command-line entry point: parses arguments, calls a command, maps errors to exit codes.

Only this module knows argparse, and it imports nothing heavy: each verb's module is imported when
that verb runs, so `deployer --version` and `--help` stay fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from deployer import __version__

VERBS = {
    "validate": "check the spec, files and references (no helm, no cluster)",
    "values": "print the merged values of one release (--explain: where each came from)",
    "template": "render the selected releases with helm (multi-document YAML)",
    "diff": "show what apply would change, per release: resources and values",
    "apply": "install/upgrade/uninstall what changed, in needs order",
    "sync": "upgrade every selected release, changed or not",
    "rollback": "undo the last apply of an environment, or roll one release back",
    "destroy": "uninstall the environment's releases, dependents first",
    "status": "what is deployed, by which run and commit",
    "test": "run the releases' helm tests (test hooks) in needs order; exit 1 if any fails",
    "unlock": "remove an environment's run lock (--force: also one held by another run)",
    "repos": "add/refresh the spec's chart repositories (only when stale, or --refresh)",
    "lock": "resolve chart version ranges into deployer.lock.yaml (--check: exit 1 when it is stale)",
    "schema": "print the JSON Schema of deployer.yaml or of an environment overlay",
    "import": "write deployer.yaml and overlays from another tool's spec (helmfile)",
    "init": "start a repository: deployer.yaml, an environment overlay and a values file for CHART",
    "completion": 'print shell completion code: eval "$(deployer completion bash)"',
    "export": "write an environment as another tool's objects (flux: HelmReleases and sources)",
    "capabilities": "write what the environment's cluster serves to environments/ENV/capabilities.yaml",
}
# Verbs whose module and function have another name (`import` is a Python keyword).
MODULES = {"sync": "apply", "import": "import_", "lock": "lock_"}


def _common(
    parser: argparse.ArgumentParser,
    *,
    env: bool = False,
    env_required: bool = False,
    selector: bool = False,
    helm: bool = False,
) -> None:
    parser.add_argument("-f", "--file", default=None, help="the spec (default: ./deployer.yaml)")
    parser.add_argument(
        "--sops",
        default=None,
        metavar="PATH",
        help="sops binary for encrypted values files (default: DEPLOYER_SOPS, PATH)",
    )
    if env:
        parser.add_argument("-e", "--environment", required=env_required, metavar="ENV", help="environment")
    if selector:
        parser.add_argument(
            "-l",
            "--selector",
            action="append",
            default=[],
            metavar="K=V[,K=V]",
            help="only releases with these labels (repeat for OR); name, namespace, chart work too",
        )
    if helm:
        parser.add_argument(
            "--helm", default=None, metavar="PATH", help="helm binary (default: DEPLOYER_HELM, PATH)"
        )
    parser.add_argument("--no-color", action="store_true", help="plain output (also NO_COLOR=1)")


def _kube_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig", default=None, metavar="PATH", help="default: KUBECONFIG, ~/.kube/config"
    )
    parser.add_argument("--kube-context", default=None, metavar="NAME", help="default: the current context")


def _value_flags(parser: argparse.ArgumentParser) -> None:
    """The highest value layers, as helm reads them: --values files, then --set-json, --set,
    --set-string, --set-file, --set-literal, in that order whatever the order given."""
    parser.add_argument(
        "--values",
        action="append",
        default=[],
        metavar="FILE",
        help="highest value layer from a file (after the environment overlays)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE[,...]",
        help="as helm's --set: a.b=1,c[0]=x,d={x,y}; only integers, true, false and null are typed",
    )
    parser.add_argument(
        "--set-string",
        action="append",
        default=[],
        metavar="KEY=VALUE[,...]",
        help="--set, every value a string",
    )
    parser.add_argument(
        "--set-file",
        action="append",
        default=[],
        metavar="KEY=PATH[,...]",
        help="--set with the content of PATH (relative to the current directory)",
    )
    parser.add_argument(
        "--set-json",
        action="append",
        default=[],
        metavar="KEY=JSON[,...]",
        help="--set with JSON values, or one JSON object",
    )
    parser.add_argument(
        "--set-literal",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one key set to VALUE as it is (commas and backslashes included)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deployer",
        description="Declarative Helm deployments: one spec, per-environment overlays, exact diffs.",
    )
    parser.add_argument("--version", action="version", version=f"deployer {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="log every helm command and API request to stderr"
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True

    p = sub.add_parser("validate", help=VERBS["validate"], description=VERBS["validate"])
    _common(p, env=True)
    p.add_argument(
        "--no-decrypt",
        action="store_true",
        help="check that encrypted values files are well-formed sops files, without decrypting them",
    )

    p = sub.add_parser("values", help=VERBS["values"], description=VERBS["values"])
    _common(p, env=True, env_required=True)
    p.add_argument("release", help="release name (or namespace/name)")
    p.add_argument("--explain", action="store_true", help="show each leaf's source and what it overrode")
    p.add_argument("--show-secrets", action="store_true", help="do not mask values marked sensitive")
    _value_flags(p)

    p = sub.add_parser("template", help=VERBS["template"], description=VERBS["template"])
    _common(p, env=True, env_required=True, selector=True, helm=True)
    p.add_argument(
        "--output-dir", default=None, metavar="DIR", help="write one file per release instead of stdout"
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="releases rendered at once (default: number of CPUs)",
    )
    p.add_argument(
        "--kube-version", default=None, help="Kubernetes version for .Capabilities (offline render)"
    )
    _value_flags(p)

    _cluster_verbs(sub)
    _test_verb(sub)

    p = sub.add_parser("repos", help=VERBS["repos"], description=VERBS["repos"])
    _common(p, helm=True)
    p.add_argument("--refresh", action="store_true", help="refresh every index even when fresh")

    p = sub.add_parser("lock", help=VERBS["lock"], description=VERBS["lock"])
    _common(p, env=True, helm=True)
    p.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when the lock file is not what lock would write",
    )

    p = sub.add_parser("schema", help=VERBS["schema"], description=VERBS["schema"])
    p.add_argument("kind", nargs="?", choices=["spec", "overlay"], default="spec")

    _tooling_verbs(sub)
    return parser


def _tooling_verbs(sub: Any) -> None:
    """Verbs that start, move or hand over a repository: import, init, completion, export."""
    p = sub.add_parser("import", help=VERBS["import"], description=VERBS["import"])
    # The tool is a sub-command (not a positional beside PATH), so that options may come before PATH:
    # `import helmfile -e default helmfile.yaml` (argparse cannot mix an optional positional with them).
    tools = p.add_subparsers(dest="tool", metavar="TOOL", required=True)
    p = tools.add_parser("helmfile", help="the tool whose spec to import", description=VERBS["import"])
    p.add_argument(
        "path",
        nargs="?",
        default="helmfile.yaml",
        help="its state file or directory (default: ./helmfile.yaml, else ./helmfile.d/)",
    )
    p.add_argument(
        "-e",
        "--environment",
        action="append",
        default=[],
        metavar="ENV",
        help="import only these environments (repeat; default: every environment the file defines)",
    )
    p.add_argument(
        "--helmfile",
        default=None,
        metavar="PATH",
        help="helmfile binary, for templated files (default: DEPLOYER_HELMFILE, PATH)",
    )
    p.add_argument(
        "--helm",
        default=None,
        metavar="PATH",
        help="helm binary for helmfile (its --helm-binary; default: DEPLOYER_HELM, PATH)",
    )
    p.add_argument("--no-color", action="store_true", help="plain output (also NO_COLOR=1)")
    p = sub.add_parser("init", help=VERBS["init"], description=VERBS["init"])
    p.add_argument(
        "chart", help="a chart directory, repo/chart (with --repo-url) or oci://registry/path/chart"
    )
    p.add_argument("--name", default=None, help="the release's name (default: the chart's)")
    p.add_argument(
        "--version",
        default=None,
        help="the chart version (required for repo and OCI charts; a range such as ~1.2 needs deployer lock)",
    )
    p.add_argument("--repo-url", default=None, metavar="URL", help="the repository of a repo/chart")
    p.add_argument("--env", default="dev", metavar="ENV", help="the first environment (default: dev)")
    p.add_argument("--namespace", default="default", help="the releases' namespace (default: default)")
    p.add_argument("--dir", default=".", help="where to write (default: the current directory)")

    p = sub.add_parser("completion", help=VERBS["completion"], description=VERBS["completion"])
    p.add_argument("shell", choices=["bash", "zsh", "fish"])

    p = sub.add_parser("export", help=VERBS["export"], description=VERBS["export"])
    p.add_argument("tool", choices=["flux"], help="the tool whose objects to write")
    _common(p, env=True, env_required=True)
    p.add_argument(
        "--output-dir", default=None, metavar="DIR", help="one file per object (Secrets under DIR/secrets)"
    )
    p.add_argument("--git-url", default=None, metavar="URL", help="the URL Flux clones (default: origin)")
    p.add_argument(
        "--git-ref",
        default=None,
        metavar="REF",
        help="branch, refs/... or commit (default: the current branch)",
    )
    p.add_argument(
        "--namespace", default="flux-system", help="namespace of the Flux objects (default: flux-system)"
    )
    p.add_argument("--interval", default="10m", help="reconcile interval of every object (default: 10m)")
    p.add_argument(
        "--secrets-file", default=None, metavar="FILE", help="write the Secrets of sensitive values here"
    )


def _no_ignore_flag(p: Any) -> None:
    p.add_argument(
        "--no-ignore",
        action="store_true",
        help="apply no `ignore:` rule: every difference is shown (and planned)",
    )


def _cluster_verbs(sub: Any) -> None:
    _diff_verb(sub)
    _apply_verbs(sub)


def _diff_verb(sub: Any) -> None:
    p = sub.add_parser("diff", help=VERBS["diff"], description=VERBS["diff"])
    _common(p, env=True, env_required=True, selector=True, helm=True)
    _kube_flags(p)
    p.add_argument("--output", "-o", choices=["text", "markdown", "json"], default="text")
    p.add_argument("--detailed-exitcode", action="store_true", help="exit 2 when anything would change")
    p.add_argument(
        "--live",
        action="store_true",
        help="also compare the live objects with the deployed revision (server-side apply dry run)",
    )
    p.add_argument(
        "--base",
        default=None,
        metavar="GIT_REF",
        help="compare with the spec as of GIT_REF instead of the cluster (no cluster access)",
    )
    p.add_argument("--show-secrets", action="store_true", help="do not mask values marked sensitive")
    _no_ignore_flag(p)
    p.add_argument(
        "--save-plan",
        default=None,
        metavar="FILE",
        help="also write the plan (digests, no values) for `apply --plan FILE`",
    )
    p.add_argument("--concurrency", type=int, default=os.cpu_count() or 1, metavar="N")
    p.add_argument(
        "--kube-version", default=None, help="Kubernetes version for rendering (default: the cluster's)"
    )
    _value_flags(p)


def _apply_verbs(sub: Any) -> None:
    for verb in ("apply", "sync"):
        p = sub.add_parser(verb, help=VERBS[verb], description=VERBS[verb])
        _common(p, env=True, env_required=True, selector=True, helm=True)
        _kube_flags(p)
        p.add_argument("--yes", "-y", action="store_true", help="confirm changes to a protected environment")
        _no_ignore_flag(p)
        p.add_argument("--concurrency", type=int, default=4, metavar="N", help="releases changed at once")
        p.add_argument(
            "--rollback-on-failure",
            dest="rollback_on_failure",
            action="store_true",
            default=None,
            help="roll back every release this run changed if any fails (default on if protected)",
        )
        p.add_argument("--no-rollback-on-failure", dest="rollback_on_failure", action="store_false")
        p.add_argument(
            "--lock-timeout",
            type=float,
            default=60.0,
            metavar="SECONDS",
            help="wait this long for another run's lock (default 60)",
        )
        p.add_argument(
            "--prune",
            action="store_true",
            help="also uninstall releases labelled with this environment that left the spec",
        )
        p.add_argument(
            "--recover",
            action="store_true",
            help="first roll back releases a dead run left pending-* (uninstall if never deployed)",
        )
        p.add_argument(
            "--test",
            action="store_true",
            help="then run the helm tests of the releases it installed or upgraded (a failed test "
            "is a failed release)",
        )
        p.add_argument("--output", "-o", choices=["text", "markdown", "json"], default="text")
        _plan_flags(p)
        p.add_argument("--kube-version", default=None, help=argparse.SUPPRESS)
        _take_over(p)
        _value_flags(p)

    p = sub.add_parser("rollback", help=VERBS["rollback"], description=VERBS["rollback"])
    _common(p, env=True, env_required=True, helm=True)
    _kube_flags(p)
    p.add_argument("release", nargs="?", help="one release (default: every release the last apply changed)")
    p.add_argument("--revision", type=int, default=None, help="with RELEASE: the revision to return to")
    p.add_argument("--yes", "-y", action="store_true", help="confirm for a protected environment")
    p.add_argument("--lock-timeout", type=float, default=60.0, metavar="SECONDS")
    _take_over(p)

    p = sub.add_parser("destroy", help=VERBS["destroy"], description=VERBS["destroy"])
    _common(p, env=True, env_required=True, selector=True, helm=True)
    _kube_flags(p)
    p.add_argument("--yes", "-y", action="store_true", help="confirm for a protected environment")
    p.add_argument(
        "--include-unlabelled",
        action="store_true",
        help="also uninstall same-named releases without deployer's project/environment labels",
    )
    p.add_argument("--lock-timeout", type=float, default=60.0, metavar="SECONDS")
    _take_over(p)

    p = sub.add_parser("status", help=VERBS["status"], description=VERBS["status"])
    _common(p, env=True, env_required=True)
    _kube_flags(p)

    p = sub.add_parser("capabilities", help=VERBS["capabilities"], description=VERBS["capabilities"])
    _common(p, env=True, env_required=True)
    _kube_flags(p)

    p = sub.add_parser("unlock", help=VERBS["unlock"], description=VERBS["unlock"])
    _common(p, env=True, env_required=True)
    _kube_flags(p)
    p.add_argument("--force", action="store_true", help="required: the lock may belong to a running apply")


def _plan_flags(p: argparse.ArgumentParser) -> None:
    """apply's --live and saved-plan flags (docs/diff.md)."""
    p.add_argument(
        "--live",
        action="store_true",
        help="also upgrade releases whose live objects drifted from the deployed revision",
    )
    p.add_argument(
        "--plan",
        default=None,
        metavar="FILE",
        help="apply only if the fresh plan is the one saved by diff --save-plan FILE",
    )
    p.add_argument(
        "--plan-max-age",
        default="7d",
        metavar="AGE",
        help="refuse a --plan file older than this (default 7d; 90m, 12h, 1d12h)",
    )


def _test_verb(sub: Any) -> None:
    p = sub.add_parser("test", help=VERBS["test"], description=VERBS["test"])
    _common(p, env=True, env_required=True, selector=True, helm=True)
    _kube_flags(p)
    p.add_argument("--lock-timeout", type=float, default=60.0, metavar="SECONDS")


def _take_over(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--take-over-from-flux",
        action="store_true",
        help="also change releases a Flux HelmRelease manages (suspend it first, or Flux reverts them)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:  # the shell asks for completions (deployer completion SHELL)
        import argcomplete

        from deployer.commands.completion import attach

        attach(parser)
        argcomplete.autocomplete(parser, always_complete_options=False)  # prints them and exits
    args = parser.parse_args(argv)
    if getattr(args, "no_color", False):
        os.environ["NO_COLOR"] = "1"
    debug = bool(args.debug or os.environ.get("DEPLOYER_DEBUG"))
    if debug:
        import logging

        logger = logging.getLogger("deployer")
        logger.handlers = [logging.StreamHandler(sys.stderr)]  # stderr as it is now (tests swap it)
        logger.handlers[0].setFormatter(logging.Formatter("debug: %(name)s: %(message)s"))
        logger.setLevel(logging.DEBUG)
    from deployer import cancel
    from deployer.errors import DeployerError

    try:
        import importlib

        with cancel.handling():
            module_name = MODULES.get(args.verb, args.verb)
            module = importlib.import_module(f"deployer.commands.{module_name}")
            code = int(getattr(module, module_name)(args))
        if cancel.received():
            _record_specs(ok=False)
            return cancel.exit_status()
        _record_specs(ok=code in (0, 2))
        return code
    except cancel.Cancelled as exc:
        _record_specs(ok=False)
        return cancel.exit_status(exc.signum)
    except DeployerError as exc:
        _record_specs(ok=False)
        if cancel.received():  # what failed failed because of the signal: say that instead
            return cancel.exit_status()
        print(exc.render(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:  # a bug or an unforeseen fault: one line, the traceback only when asked
        if cancel.received():
            return cancel.exit_status()
        if debug:
            import traceback

            traceback.print_exc(file=sys.stderr)
        print(internal_error(exc), file=sys.stderr)
        return 1
    except BaseException:  # asyncio's CancelledError: a signal cancelled the run's tasks
        if cancel.received():
            return cancel.exit_status()
        raise


def _record_specs(*, ok: bool) -> None:
    """Only a run that went well records the spec it validated (deployer/speccache.py)."""
    cache = sys.modules.get("deployer.speccache")
    if cache is not None:
        cache.flush(record=ok)


def internal_error(exc: BaseException) -> str:
    message = " ".join(str(exc).split())  # one line, whatever the exception's text holds
    return f"error: internal error: {type(exc).__name__}: {message}; rerun with --debug for the traceback"


if __name__ == "__main__":
    raise SystemExit(main())
