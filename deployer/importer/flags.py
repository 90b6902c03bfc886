"""helmfile's helm flags (`helmDefaults` and each release's own) as deployer's typed release settings,
or, where deployer has no such setting, a report line saying what deployer does instead.

helmfile's names are those of its HelmSpec and ReleaseSpec (pkg/state/state.go); deployer's are
those of deployer/model.py (ReleaseSettings), which deployer/releaseflags.py hands to helm.
"""

from __future__ import annotations

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
    ),
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
