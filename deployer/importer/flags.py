"""helmfile's helm flags (`helmDefaults` and each release's own) as deployer's typed release settings,
or, where deployer has no such setting, a report line saying what deployer does instead.

helmfile's names are those of its HelmSpec and ReleaseSpec (pkg/state/state.go); deployer's are
those of deployer/model.py (ReleaseSettings), which deployer/releaseflags.py hands to helm.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from typing import Any

from deployer.importer.findings import Kept

# helmfile key -> deployer key, same meaning (wait, timeout and atomic included).
CARRIED = {
    "wait": "wait",
    "timeout": "timeout",
    "atomic": "atomic",
    "createNamespace": "createNamespace",
    "waitForJobs": "waitForJobs",
    "cleanupOnFail": "cleanupOnFail",
    "historyMax": "historyMax",
    "force": "force",
    "skipSchemaValidation": "skipSchemaValidation",
    "takeOwnership": "takeOwnership",
    "devel": "devel",
    "verify": "verify",
    "keyring": "keyring",
}
_INTEGERS = {"timeout", "historyMax"}
_STRINGS = {"keyring"}

# What deployer already does where helmfile needs a flag: nothing to write, so no report line.
# disableValidation(OnInstall): helmfile passes --disable-validation to `helm template`/`helm diff`,
# which deployer renders offline (helm template, no cluster validation) anyway; skipDeps/skipRefresh:
# deployer builds a local chart's dependencies only when charts/ lacks them, and refreshes a
# repository only when it is stale or `deployer repos` asks.
EQUIVALENT = {"disableValidation", "disableValidationOnInstall", "skipDeps", "skipRefresh"}

WHY = {
    "recreatePods": Kept(
        "helmfile passes --recreate-pods, which helm 3 and 4 refuse (unknown flag), so it has no effect "
        "deployer could keep: to roll pods when their config changes, give the pod template a "
        "checksum/config annotation in the chart, or run [kubectl, rollout, restart, deployment/NAME] "
        "as a postsync hook"
    ),
    "disableOpenAPIValidation": Kept(
        "deployer passes --disable-openapi-validation itself when the API server validates fields "
        "(Kubernetes 1.27+); on an older cluster, fix the objects helm's OpenAPI check refuses"
    ),
    "reuseValues": (
        "deployer always passes a release's complete merged values (--reset-values); write every value "
        "the release needs in its values"
    ),
    "syncArgs": (
        "extra arguments helmfile passes to helm upgrade; deployer passes no arguments of yours: where a "
        "release setting says the same (wait, timeout, atomic, force, createNamespace: README, Release "
        "settings) write that; otherwise it is not carried over"
    ),
    "diffArgs": Kept(
        "arguments of helmfile's diff (the helm-diff plugin), which only change what the diff shows; "
        "deployer's diff is its own (`deployer diff`) and never shows Secret data: nothing to write, "
        "not carried over"
    ),
    "templateArgs": (
        "extra arguments helmfile passes to helm template; not carried over: write --api-versions X as "
        "environments.<env>.apiVersions: [X] and --kube-version V as environments.<env>.kubeVersion: V"
    ),  # a release's; helmDefaults' are carried by template_args
    "skipCRDs": "",  # set below: defaults get crds: skip
}


def settings(raw: Mapping[str, Any], note: Callable[[str, str], None]) -> dict[str, Any]:
    """deployer's settings for what `raw` (helmDefaults or a release) sets, in deployer's key order;
    `note(key, why)` for each flag that has no deployer setting."""
    out: dict[str, Any] = {}
    for key, target in CARRIED.items():
        if key in raw and raw[key] is not None:
            out[target] = _typed(key, raw[key])
    if _true(raw.get("skipCRDs")):
        out["crds"] = "skip"
    for key in sorted(set(raw) & set(WHY)):
        if WHY[key] and raw[key] not in (None, False, "false"):
            note(key, WHY[key])
    return out


def handled(key: str) -> bool:
    """Whether `settings` takes care of this key (carried, reported, or nothing to write)."""
    return key in CARRIED or key in EQUIVALENT or key in WHY


def _typed(key: str, value: Any) -> Any:
    if key in _INTEGERS:
        return int(value)
    if key in _STRINGS:
        return str(value)
    return _true(value)


def _true(value: Any) -> bool:
    return value in (True, "true")


TEMPLATE_ARGS_KEPT = (  # a note (Kept) once formatted
    "{carried} carried into every environment's {fields} (merged with what is there): deployer passes "
    "them to its offline renders (template, diff --base), as helmfile passes them to helm template; "
    "diff and apply against a cluster render with the API versions and Kubernetes version that "
    "cluster serves, as helmfile's sync does"
)
TEMPLATE_ARGS_LOST = (
    "{args}: extra argument(s) helmfile passes to helm template, which deployer's renders do not take; "
    "not carried over"
)


def template_args(raw: Any) -> tuple[list[str], str | None, list[str]]:
    """helmDefaults.templateArgs: (the API versions of --api-versions / -a, the Kubernetes version of
    --kube-version, every other argument)."""
    items = [raw] if isinstance(raw, str) else list(raw or [])
    tokens = [t for item in items for t in (shlex.split(str(item)) if str(item).strip() else [])]
    apis: list[str] = []
    kube: str | None = None
    rest: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        name, eq, value = token.partition("=")
        if name in ("--api-versions", "-a", "--kube-version"):
            if not eq:
                if i + 1 >= len(tokens):
                    rest.append(token)
                    break
                value, i = tokens[i + 1], i + 1
            if name == "--kube-version":
                kube = value
            else:
                apis += [a.strip() for a in value.split(",") if a.strip() and a.strip() not in apis]
        elif token.startswith("-a") and len(token) > 2 and not token.startswith("--"):
            apis += [a for a in token[2:].split(",") if a and a not in apis]
        else:
            rest.append(token)
        i += 1
    return apis, kube, rest
