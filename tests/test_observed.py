"""Helm's release records decoded as helm writes them: Secrets (base64 twice, gzip or not) and
ConfigMaps (base64 once); the current revision is the highest, whatever the list order."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from typing import Any

import pytest

from deployer.observed import Status, current_releases, decode_release, histories


def release(name: str, revision: int, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": "apps",
        "version": revision,
        "info": {
            "status": status,
            "description": f"revision {revision}",
            "last_deployed": f"2025-01-{revision:02d}T10:00:00.123456789Z",
        },
        "chart": {"metadata": {"name": "web", "version": f"1.{revision}.0"}, "files": []},
        "config": {"replicaCount": revision},
        "manifest": f"---\n# Source: web/templates/cm.yaml\nkind: ConfigMap\nmetadata:\n  name: r{revision}",
        **extra,
    }


def payload(rel: dict[str, Any], *, gzipped: bool = True) -> bytes:
    """What helm's encodeRelease stores: base64(gzip(JSON)) (or plain JSON before helm compressed)."""
    raw = json.dumps(rel).encode()
    return base64.b64encode(gzip.compress(raw) if gzipped else raw)


def secret(
    rel: dict[str, Any], *, gzipped: bool = True, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """A release Secret as the Kubernetes API returns it: its data base64-encoded once more."""
    return {
        "kind": "Secret",
        "metadata": {
            "name": f"sh.helm.release.v1.{rel['name']}.v{rel['version']}",
            "namespace": rel["namespace"],
            "labels": {
                "name": rel["name"],
                "owner": "helm",
                "status": rel["info"]["status"],
                "version": str(rel["version"]),
                **(labels or {}),
            },
        },
        "data": {"release": base64.b64encode(payload(rel, gzipped=gzipped)).decode()},
    }


def configmap(rel: dict[str, Any]) -> dict[str, Any]:
    """The same record under HELM_DRIVER=configmap: ConfigMap data is plain text, base64 once."""
    obj = secret(rel)
    return {**obj, "kind": "ConfigMap", "data": {"release": payload(rel).decode()}}


@pytest.mark.parametrize("gzipped", [True, False], ids=["gzip", "plain-json"])
def test_a_secret_payload_is_base64_twice_with_or_without_gzip(gzipped: bool) -> None:
    rel = release("api", 1, "deployed")
    assert decode_release(secret(rel, gzipped=gzipped)["data"]["release"]) == rel


def test_a_configmap_payload_is_base64_once() -> None:
    rel = release("api", 1, "deployed")
    assert decode_release(configmap(rel)["data"]["release"], "ConfigMap") == rel
    observed = current_releases([configmap(rel)])["apps/api"]
    assert (observed.revision, observed.status, observed.values) == (1, Status.DEPLOYED, {"replicaCount": 1})


def test_the_current_revision_is_the_highest_whatever_the_order() -> None:
    secrets = [
        secret(release("api", 10, "deployed")),
        secret(release("api", 2, "superseded")),
        secret(release("api", 9, "superseded")),
    ]
    observed = current_releases(secrets)["apps/api"]
    assert (observed.revision, observed.status) == (10, Status.DEPLOYED)  # 10 > 9 as numbers, not text
    assert (observed.chart, observed.chart_version) == ("web", "1.10.0")
    assert observed.values == {"replicaCount": 10}
    assert observed.description == "revision 10"
    assert observed.deployed_at == "2025-01-10T10:00:00.123456789Z"
    assert observed.last_deployed_revision == 10
    assert "name: r10" in observed.manifest


def test_a_failed_upgrade_keeps_the_last_deployed_revision() -> None:
    secrets = [secret(release("api", 1, "superseded")), secret(release("api", 2, "failed"))]
    observed = current_releases(secrets)["apps/api"]
    assert (observed.revision, observed.status, observed.last_deployed_revision) == (2, Status.FAILED, 1)


def test_a_release_that_never_deployed_has_no_last_deployed_revision() -> None:
    observed = current_releases([secret(release("api", 1, "failed"))])["apps/api"]
    assert observed.last_deployed_revision is None


def test_an_uninstalling_release_is_current_with_its_status() -> None:
    secrets = [secret(release("api", 1, "superseded")), secret(release("api", 2, "uninstalling"))]
    observed = current_releases(secrets)["apps/api"]
    assert (observed.revision, observed.status, observed.last_deployed_revision) == (
        2,
        Status.UNINSTALLING,
        1,
    )


def test_an_unknown_status_reads_as_unknown() -> None:
    observed = current_releases([secret(release("api", 1, "paused"))])["apps/api"]
    assert observed.status == Status.UNKNOWN


def test_releases_are_keyed_by_namespace_and_name_and_foreign_secrets_are_ignored() -> None:
    other = release("api", 1, "deployed")
    other["namespace"] = "staging"
    foreign = secret(release("db", 1, "deployed"))
    foreign["metadata"]["labels"]["owner"] = "someone-else"
    no_data = secret(release("cache", 1, "deployed"))
    no_data["data"] = {}
    observed = current_releases([secret(release("api", 1, "deployed")), secret(other), foreign, no_data])
    assert sorted(observed) == ["apps/api", "staging/api"]


def test_the_storage_labels_are_kept() -> None:
    rel = release("api", 1, "deployed")
    labels = {"deployer-project": "shop", "deployer-environment": "prod"}
    observed = current_releases([secret(rel, labels=labels)])["apps/api"]
    assert observed.belongs_to("shop", "prod")
    assert not observed.belongs_to("shop", "dev")
    assert observed.environment == "prod"


def test_stored_hooks_are_one_manifest_in_helm_s_order() -> None:
    hooks = [
        {
            "name": "migrate",
            "path": "web/templates/migrate.yaml",
            "manifest": "kind: Job\nmetadata:\n  name: m\n",
        },
        {"name": "test", "path": "web/templates/tests/t.yaml", "manifest": "kind: Pod\nmetadata:\n  name: t"},
    ]
    observed = current_releases([secret(release("api", 1, "deployed", hooks=hooks))])["apps/api"]
    assert observed.hooks.index("# Source: web/templates/migrate.yaml") < observed.hooks.index(
        "# Source: web/templates/tests/t.yaml"
    )
    assert "name: m" in observed.hooks and "name: t" in observed.hooks
    assert current_releases([secret(release("api", 1, "deployed"))])["apps/api"].hooks == ""


def test_crd_files_of_the_stored_chart_are_digested() -> None:
    crd = b"apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
    rel = release("api", 1, "deployed")
    rel["chart"]["files"] = [
        {"name": "crds/widgets.yaml", "data": base64.b64encode(crd).decode()},
        {"name": "README.md", "data": base64.b64encode(b"hello").decode()},
    ]
    observed = current_releases([secret(rel)])["apps/api"]
    assert observed.crds == {"crds/widgets.yaml": hashlib.sha256(crd).hexdigest()}


def test_histories_list_every_revision_oldest_first_from_the_labels() -> None:
    secrets = [
        secret(release("api", 3, "deployed")),
        secret(release("api", 1, "superseded")),
        configmap(release("api", 2, "superseded")),
    ]
    revisions = histories(secrets)["apps/api"]
    assert [(r.revision, r.status) for r in revisions] == [
        (1, "superseded"),
        (2, "superseded"),
        (3, "deployed"),
    ]


@pytest.mark.parametrize(
    "data",
    [
        "abc",  # not base64: "Incorrect padding" stopped every plan in the cluster
        base64.b64encode(b"not gzip and not JSON").decode(),
        base64.b64encode(base64.b64encode(gzip.compress(b'{"no": "name"}'))).decode(),
    ],
)
def test_a_record_helm_did_not_write_is_left_out_and_named(data: str) -> None:
    good = secret(release("web", 1, "deployed"))
    bad = secret(release("other", 3, "deployed"))
    bad["data"]["release"] = data
    unreadable: list[str] = []
    found = current_releases([good, bad], unreadable)
    assert list(found) == ["apps/web"]
    assert len(unreadable) == 1 and unreadable[0].startswith("apps/other (revision 3: ")
