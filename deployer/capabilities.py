"""Captured capabilities: the Kubernetes version and API versions a cluster serves, kept in the
repository (`environments/<env>/capabilities.yaml`) so that offline renders (`diff --base`,
`template`) see what `helm template` would see against the cluster: a template guarded by
`.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor"` renders its object, and
a chart's `kubeVersion:` constraint is checked against the real version.

`deployer capabilities -e ENV` writes the file (sorted, no timestamp: capturing an unchanged
cluster again changes nothing in Git). The environment's `apiVersions:` in deployer.yaml add to the
file's; its `kubeVersion:` (or --kube-version) wins over the file's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from deployer.errors import HelmError, SpecError
from deployer.model import API_VERSION
from deployer.project import Project
from deployer.yamlsource import load_file

FILE_NAME = "capabilities.yaml"
_KUBE_VERSION_TEXT = "a Kubernetes version such as v1.35.4"


@dataclass(frozen=True)
class Capabilities:
    """What an offline render of one environment passes helm (--kube-version, --api-versions)."""

    kube_version: str | None
    api_versions: tuple[str, ...]
    captured: bool  # the environment has a capabilities file
    kube_version_from: str = ""  # where kube_version comes from ("" for helm's default)

    @property
    def known(self) -> bool:
        """Whether the renders know any of the cluster's API versions (captured or declared)."""
        return self.captured or bool(self.api_versions)


def file_path(project: Project, environment: str) -> Path:
    return project.root / "environments" / environment / FILE_NAME


def shown_path(environment: str) -> str:
    return f"environments/{environment}/{FILE_NAME}"


def for_environment(project: Project, environment: str, kube_version: str | None = None) -> Capabilities:
    """The capabilities offline renders of `environment` use: --kube-version (`kube_version`), else
    the environment's kubeVersion, else the captured one; the captured API versions plus the
    declared ones."""
    env = project.environment(environment)
    path = file_path(project, environment)
    captured_version, captured_apis = read(path) if path.is_file() else (None, ())
    sources = [
        (kube_version, "--kube-version"),
        (env.kube_version, f"kubeVersion: of environment '{environment}'"),
        (captured_version, shown_path(environment)),
    ]
    version, source = next(((v, s) for v, s in sources if v), (None, ""))
    return Capabilities(
        kube_version=version,
        api_versions=tuple(sorted({*captured_apis, *env.api_versions})),
        captured=path.is_file(),
        kube_version_from=source,
    )


def read(path: Path) -> tuple[str | None, tuple[str, ...]]:
    """(kubeVersion, apiVersions) of a capabilities file; a malformed one is a SpecError at its line."""
    doc = load_file(path)
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        raise SpecError(
            "a capabilities file is a mapping with kubeVersion and apiVersions",
            mark=doc.mark(()),
            hint="write it again with `deployer capabilities -e ENV`",
        )
    for key in data:
        if key not in ("kubeVersion", "apiVersions"):
            raise SpecError(
                f"unknown key '{key}' in a capabilities file",
                mark=doc.mark((key,), key=True),
                hint="it holds kubeVersion and apiVersions only; write it again with "
                "`deployer capabilities -e ENV`",
            )
    version = data.get("kubeVersion")
    if version is not None and not (isinstance(version, str) and version.lstrip("v")[:1].isdigit()):
        raise SpecError(
            f"kubeVersion must be {_KUBE_VERSION_TEXT}",
            mark=doc.mark(("kubeVersion",)),
            hint="write it again with `deployer capabilities -e ENV`",
        )
    apis = data.get("apiVersions") or []
    if not isinstance(apis, list):
        raise SpecError(
            "apiVersions must be a list of group/version and group/version/Kind strings",
            mark=doc.mark(("apiVersions",)),
            hint="write it again with `deployer capabilities -e ENV`",
        )
    for i, item in enumerate(apis):
        if not (isinstance(item, str) and API_VERSION.fullmatch(item)):
            raise SpecError(
                f"'{item}' is not an API version (group/version or group/version/Kind)",
                mark=doc.mark(("apiVersions", i)),
                hint="write it again with `deployer capabilities -e ENV`",
            )
    return version, tuple(apis)


def dump(environment: str, kube_version: str, api_versions: Iterable[str]) -> str:
    """The file's text: stable (sorted, no timestamp), so a capture of an unchanged cluster is no
    change in Git and a changed one is a reviewable diff."""
    lines = [
        f"# Written by `deployer capabilities -e {environment}`: what the cluster serves, for offline",
        "# renders (diff --base, template). Run it again after a cluster upgrade or a new CRD.",
        f"kubeVersion: {kube_version}",
        "apiVersions:",
        *(f"  - {api}" for api in sorted(set(api_versions))),
    ]
    return "\n".join(lines) + "\n"


def write(project: Project, environment: str, kube_version: str, api_versions: Sequence[str]) -> Path:
    """Write the environment's capabilities file (its directory created when missing)."""
    project.environment(environment)  # an unknown environment fails before anything is written
    path = file_path(project, environment)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = dump(environment, kube_version, api_versions)
    partial = path.with_name(f".{FILE_NAME}.tmp")
    partial.write_text(text)
    partial.replace(path)
    return path


# helm's refusal of a chart's `kubeVersion:` constraint (helm 3 and 4 word it alike).
_KUBE_VERSION_REFUSED = re.compile(
    r"chart requires kubeVersion: (\S+) which is incompatible with Kubernetes (\S+)"
)


def explain_kube_version(exc: HelmError, environment: str, caps: Capabilities) -> HelmError:
    """helm's refusal of a chart's kubeVersion in an offline render, with one line saying which
    Kubernetes version the render assumed and how to set it (other errors as they are)."""
    found = _KUBE_VERSION_REFUSED.search(exc.stderr)
    if found is None:
        return exc
    assumed = found.group(2)
    if caps.kube_version:
        why = f"rendered offline as Kubernetes {assumed}, from {caps.kube_version_from}"
    else:
        why = (
            f"rendered offline as Kubernetes {assumed}, helm's default: environment '{environment}' has "
            f"no kubeVersion: and no {shown_path(environment)}"
        )
    return exc.with_hint(
        f"{why}; set kubeVersion: on the environment in deployer.yaml, or run "
        f"`deployer capabilities -e {environment}` with cluster access and commit {shown_path(environment)}"
    )


def missing_note(environment: str, releases: Sequence[str]) -> str:
    """The offline plan's note on releases whose templates test the cluster's API versions."""
    return (
        f"{', '.join(releases)} test(s) the cluster's API versions (.Capabilities.APIVersions) and "
        "were rendered with helm's built-in ones only: objects they guard (a ServiceMonitor, ...) may "
        f"be missing and changes to them unseen; run `deployer capabilities -e {environment}` with cluster "
        f"access and commit {shown_path(environment)} (or declare apiVersions: on the environment)"
    )
