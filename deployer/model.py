"""The spec's schema: pydantic models for deployer.yaml (loaded once, then frozen).

Field names are the YAML keys (camelCase where the spec uses it). Unknown keys are rejected so a
typo never silently does nothing.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

# group/version or group/version/Kind, as helm's --api-versions and .Capabilities.APIVersions.Has take them.
API_VERSION = re.compile(
    r"(?:[a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?v[0-9]+(?:(?:alpha|beta)[0-9]+)?(?:/[A-Za-z][A-Za-z0-9]*)?"
)


def _api_version(value: str) -> str:
    if not API_VERSION.fullmatch(value):
        raise ValueError(
            f"'{value}' is not an API version: write group/version (apps/v1, v1) or group/version/Kind "
            "(monitoring.coreos.com/v1/ServiceMonitor)"
        )
    return value


ApiVersion = Annotated[str, AfterValidator(_api_version)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


class Repository(_Model):
    """A Helm chart repository (https://...) or an OCI registry prefix (oci://...)."""

    name: str = Field(description="Name used in `chart: <name>/<chart>`.")
    url: str = Field(description="https://... index URL, or oci://registry/path.")
    plain_http: bool = Field(False, description="OCI only: talk HTTP, not HTTPS (local registries).")
    username_env: str | None = Field(
        None,
        description="Environment variable holding the username. Default DEPLOYER_REPO_<NAME>_USERNAME.",
    )
    password_env: str | None = Field(
        None,
        description="Environment variable holding the password. Default DEPLOYER_REPO_<NAME>_PASSWORD.",
    )


def _parses(text: str) -> str:
    from deployer.ignore import parse_path

    parse_path(text)
    return text


FieldPath = Annotated[str, AfterValidator(_parses)]


class IgnoreRule(_Model):
    """Fields of named objects left out of every diff (declared noise; docs/diff.md)."""

    kind: str = Field("*", description="Object kind; `*` and `?` wildcards.")
    name: str = Field("*", description="Object name; `*` and `?` wildcards.")
    namespace: str = Field("*", description="Object namespace (empty for cluster-scoped); wildcards.")
    group: str | None = Field(None, description='API group ("" is the core group); default any.')
    fields: list[FieldPath] = Field(
        min_length=1,
        description="JSON pointers (/spec/replicas) or dotted paths (spec.replicas, "
        'metadata.annotations["a.b/c"], webhooks[*].clientConfig.caBundle).',
    )


HookEvent = Literal["preapply", "presync", "postsync", "preuninstall", "postuninstall", "cleanup"]


class Hook(_Model):
    """A command deployer runs at a point of apply, sync, destroy or rollback (never diff or template)."""

    events: list[HookEvent] = Field(
        min_length=1,
        description="presync/postsync: around this release's install or upgrade (only when it changes); "
        "preuninstall/postuninstall: around its uninstall; preapply: once before the run's first change; "
        "cleanup: once after the run, whatever happened.",
    )
    command: list[Annotated[str, Field(min_length=1)]] = Field(
        min_length=1,
        description="argv, run without a shell (write [sh, -c, '...'] for one), in the spec's directory.",
    )
    timeout: int = Field(300, ge=1, description="Seconds before the command is killed (a failed hook).")
    show_logs: bool = Field(False, description="Log its output as it runs; otherwise only when it fails.")


class ReleaseSettings(_Model):
    """Settings a release may take from `defaults`."""

    namespace: str | None = None
    timeout: int | None = Field(None, ge=1, description="Seconds helm waits for the release.")
    wait: bool | None = Field(None, description="Wait until resources are ready.")
    atomic: bool | None = Field(None, description="Roll back a failed install/upgrade automatically.")
    sensitive: list[str] | None = Field(
        None, description="Values paths (dotted) whose values are masked in every output."
    )
    # helm's release flags (deployer/releaseflags.py maps each to the helm commands that take it)
    create_namespace: bool | None = Field(
        None, description="Create the release's namespace if missing (helm --create-namespace). Default true."
    )
    wait_for_jobs: bool | None = Field(
        None, description="With wait: also wait for Jobs to complete (helm --wait-for-jobs)."
    )
    cleanup_on_fail: bool | None = Field(
        None, description="Delete resources a failed upgrade created (helm --cleanup-on-fail)."
    )
    history_max: int | None = Field(
        None, ge=0, description="Revisions helm keeps per release; 0 = no limit (helm --history-max)."
    )
    force: bool | None = Field(
        None,
        description="Replace objects whose change the server refuses (helm 3 --force, helm 4 "
        "--force-replace).",
    )
    disable_hooks: bool | None = Field(
        None, description="Do not run the chart's hooks (helm --no-hooks); the plan says so."
    )
    skip_schema_validation: bool | None = Field(
        None, description="Do not validate values against the chart's values.schema.json."
    )
    take_ownership: bool | None = Field(
        None,
        description="Adopt existing objects not owned by this release (helm --take-ownership); "
        "the plan says so.",
    )
    devel: bool | None = Field(
        None,
        description="Version ranges also match pre-releases (1.3.0-rc.1), as helm's --devel; "
        "`deployer lock` resolves them.",
    )
    verify: bool | None = Field(
        None,
        description="Check a repository or OCI chart's provenance (its .prov signature, helm --verify) "
        "against `keyring` before it is rendered; a chart that fails is refused.",
    )
    keyring: str | None = Field(
        None,
        description="The public keyring `verify` checks against, relative to deployer.yaml (helm's "
        "default: ~/.gnupg/pubring.gpg).",
    )
    ignore: list[IgnoreRule] | None = Field(
        None,
        description="Object fields left out of the diff (drift and resources); added to the defaults' rules.",
    )
    crds: Literal["create", "createReplace", "skip"] | None = Field(
        None,
        description="CRDs in the chart's crds/: create (helm's default: installed once, never upgraded), "
        "createReplace (also applied server-side before each upgrade), skip (never installed).",
    )
    hooks: list[Hook] | None = Field(
        None,
        description="Commands run around this release's changes; a release's hooks run after those of "
        "`defaults` (they add to them).",
    )


class Defaults(ReleaseSettings):
    """Every release inherits these; keys set on the release win."""

    vars: dict[str, Any] | None = Field(
        None,
        description="Variables every environment has (an environment's own vars win), referenced in values "
        'as !var NAME or !var "text ${NAME}"; {value: ..., sensitive: true} masks one everywhere.',
    )


ValuesEntry = str | dict[str, Any]


class Release(ReleaseSettings):
    name: str
    chart: str = Field(description="Local directory, <repository>/<chart>, or oci://...")
    version: str | None = Field(
        None,
        description="Chart version, or a range as helm reads it (~1.19, ^2, >=1.0 <2.0, 1.2.x); absent = "
        "the newest. Ranges resolve through `deployer lock` into deployer.lock.yaml.",
    )
    needs: list[str] = Field(default_factory=list, description="Releases (name or namespace/name) first.")
    labels: dict[str, str] = Field(default_factory=dict, description="For -l key=value selectors.")
    installed: bool = True
    values: list[ValuesEntry] = Field(
        default_factory=list,
        description="Values files (relative to deployer.yaml) and inline maps, in order.",
    )

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_are_strings(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in value.items()}
        return value


class ReleaseOverride(_Model):
    """Per-environment settings of one release that are not values."""

    version: str | None = Field(None, description="Chart version or range in this environment.")
    installed: bool | None = None
    chart: str | None = None
    ignore: list[IgnoreRule] | None = Field(
        None, description="Object fields left out of this release's diff in this environment (added)."
    )


class Environment(_Model):
    kube_context: str | None = Field(
        None,
        description=(
            "The kube context this environment runs against: selected when --kube-context is not "
            "given; any other is refused."
        ),
    )
    protected: bool = Field(False, description="apply/destroy/rollback need --yes.")
    values: list[str] | None = Field(
        None, description="Overlay files (release name -> values); default environments/<env>/values.yaml."
    )
    releases: dict[str, ReleaseOverride] = Field(
        default_factory=dict, description="Release name -> settings for this environment."
    )
    kube_version: str | None = Field(
        None,
        description="Kubernetes version for offline renders (diff --base, template); wins over the one "
        "in environments/<env>/capabilities.yaml.",
    )
    api_versions: list[ApiVersion] = Field(
        default_factory=list,
        description="API versions (group/version or group/version/Kind, as helm's --api-versions takes "
        "them) that offline renders add to those of environments/<env>/capabilities.yaml.",
    )
    vars: dict[str, Any] | None = Field(
        None,
        description="Variables for values (over defaults.vars), referenced as !var NAME or "
        '!var "text ${NAME}"; {value: ..., sensitive: true} masks one everywhere.',
    )
    ignore: list[IgnoreRule] | None = Field(
        None, description="Object fields left out of every release's diff in this environment (added)."
    )


class LockSettings(_Model):
    """Where the run lock lives: a coordination.k8s.io Lease per project and environment."""

    namespace: str = Field(
        "default",
        description="Namespace of the lock's Lease (it must exist; runs need get/create/update/delete).",
    )


class Spec(_Model):
    project: str | None = Field(
        None,
        description="Names this spec's releases in a shared cluster (label deployer-project); prune and "
        "rollback only ever touch releases of this project. Default: the name of deployer.yaml's directory.",
    )
    include: list[str] = Field(
        default_factory=list,
        description="Files (or glob patterns) relative to deployer.yaml holding more releases: and "
        "repositories: (one per team, for CODEOWNERS); merged in after deployer.yaml's own.",
    )
    repositories: list[Repository] = Field(default_factory=list)
    defaults: Defaults = Field(default_factory=Defaults)
    environments: dict[str, Environment | None] = Field(default_factory=dict)
    releases: list[Release] = Field(default_factory=list)
    lock: LockSettings = Field(
        default_factory=LockSettings,
        description="The run lock: one apply/sync/rollback/destroy at a time per project and environment.",
    )
