"""The spec's schema: pydantic models for deployer.yaml (loaded once, then frozen).

Field names are the YAML keys (camelCase where the spec uses it). Unknown keys are rejected so a
typo never silently does nothing.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel


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
    hooks: list[Hook] | None = Field(
        None,
        description="Commands run around this release's changes; a release's hooks run after those of "
        "`defaults` (they add to them).",
    )


class Defaults(ReleaseSettings):
    """Every release inherits these; keys set on the release win."""


ValuesEntry = str | dict[str, Any]


class Release(ReleaseSettings):
    name: str
    chart: str = Field(description="Local directory, <repository>/<chart>, or oci://...")
    version: str | None = Field(None, description="Chart version; required for repository and OCI charts.")
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

    version: str | None = None
    installed: bool | None = None
    chart: str | None = None


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
    kube_version: str | None = Field(None, description="Kubernetes version for offline renders.")


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
    repositories: list[Repository] = Field(default_factory=list)
    defaults: Defaults = Field(default_factory=Defaults)
    environments: dict[str, Environment | None] = Field(default_factory=dict)
    releases: list[Release] = Field(default_factory=list)
    lock: LockSettings = Field(
        default_factory=LockSettings,
        description="The run lock: one apply/sync/rollback/destroy at a time per project and environment.",
    )
