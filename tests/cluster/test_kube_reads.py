"""A plan's reads (version, discovery, helm's release Secrets) go over the standard library's HTTPS
client (deployer/kubehttp.py) and give exactly what lightkube gives, for every kind of kubeconfig
it takes: a CA file or CA data, client certificates as files or data, a bearer token,
tls-server-name, insecure-skip-tls-verify; a list longer than one page; and a wrong CA is one line."""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployer.kube import Cluster, KubeError
from deployer.kubeconfig import resolve_target
from testing import sandbox


def record(name: str) -> str:
    """A helm release record as helm stores it (base64 of gzipped JSON): the cluster is shared with
    other tests, whose plans read every namespace's records."""
    release = {"name": name, "version": 1, "info": {"status": "deployed"}, "manifest": ""}
    return base64.b64encode(gzip.compress(json.dumps(release).encode(), mtime=0)).decode()


def client_certificate(tmp_path: Path, kubeconfig: Path) -> tuple[Path, Path]:
    """A client certificate of the sandbox's CA for a system:masters user."""
    pki = kubeconfig.parent / "pki"
    key, csr, cert = tmp_path / "client.key", tmp_path / "client.csr", tmp_path / "client.crt"
    run = ["openssl"]
    subprocess.run([*run, "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    subprocess.run(
        [*run, "req", "-new", "-key", str(key), "-out", str(csr), "-subj", "/CN=reader/O=system:masters"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *run,
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(pki / "ca.crt"),
            "-CAkey",
            str(pki / "ca.key"),
            "-CAcreateserial",
            "-CAserial",
            str(tmp_path / "ca.srl"),
            "-out",
            str(cert),
            "-days",
            "1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def variant(tmp_path: Path, kubeconfig: Path, name: str) -> Path:
    config: dict[str, Any] = yaml.safe_load(kubeconfig.read_text())
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    ca = kubeconfig.parent / "pki" / "ca.crt"
    if name in ("ca-file-cert-files", "cert-data", "server-name"):
        cert, key = client_certificate(tmp_path, kubeconfig)
        user.clear()
        if name == "cert-data":
            user["client-certificate-data"] = base64.b64encode(cert.read_bytes()).decode()
            user["client-key-data"] = base64.b64encode(key.read_bytes()).decode()
        else:
            user.update({"client-certificate": str(cert), "client-key": str(key)})
        if name == "ca-file-cert-files":
            del cluster["certificate-authority-data"]
            cluster["certificate-authority"] = str(ca)
    if name == "server-name":  # verified under another name than the address it is reached at
        cluster["server"] = cluster["server"].replace("127.0.0.1", "localhost")
        cluster["tls-server-name"] = "kubernetes.default"
    if name == "insecure":
        del cluster["certificate-authority-data"]
        cluster["insecure-skip-tls-verify"] = True
    path = tmp_path / f"{name}.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def reads(kubeconfig: Path, namespace: str, *, fast: bool) -> tuple[str, list[str], list[dict[str, Any]]]:
    cluster = Cluster(resolve_target(str(kubeconfig), None, {}))
    if not fast:
        cluster._reader = False  # lightkube's path, to compare with
    assert (cluster.reader() is not None) == fast
    items, how = cluster.helm_release_secrets([namespace])
    assert how == "cluster"
    mine = sorted(
        (i for i in items if i["metadata"]["namespace"] == namespace), key=lambda i: i["metadata"]["name"]
    )
    return cluster.version(), cluster.api_versions(), mine


@pytest.mark.parametrize(
    "name", ["token-ca-data", "ca-file-cert-files", "cert-data", "server-name", "insecure"]
)
def test_every_kubeconfig_form_reads_what_lightkube_reads(
    name: str, tmp_path: Path, kubeconfig: Path, namespace: str
) -> None:
    sandbox.kubectl(
        kubeconfig,
        "create",
        "secret",
        "generic",
        "sh.helm.release.v1.x.v1",
        "-n",
        namespace,
        f"--from-literal=release={record('x')}",
    )
    sandbox.kubectl(kubeconfig, "label", "secret", "sh.helm.release.v1.x.v1", "-n", namespace, "owner=helm")
    config = kubeconfig if name == "token-ca-data" else variant(tmp_path, kubeconfig, name)
    fast = reads(config, namespace, fast=True)
    assert fast == reads(kubeconfig, namespace, fast=False)
    assert fast[2][0]["metadata"]["labels"] == {"owner": "helm"}
    assert base64.b64decode(fast[2][0]["data"]["release"]).decode() == record("x")


def test_a_list_longer_than_a_page_is_read_whole(tmp_path: Path, kubeconfig: Path, namespace: str) -> None:
    objects = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": f"sh.helm.release.v1.r{i}.v1",
                "namespace": namespace,
                "labels": {"owner": "helm"},
            },
            "data": {"release": record(f"r{i}")},
        }
        for i in range(520)  # the reader asks for pages of 500
    ]
    (tmp_path / "many.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": objects})
    )
    sandbox.kubectl(kubeconfig, "apply", "-f", str(tmp_path / "many.yaml"))
    cluster = Cluster(resolve_target(str(kubeconfig), None, {"HELM_DRIVER": "configmap"}))
    before = cluster.requests
    items, _how = cluster.helm_release_secrets([namespace])
    assert len([i for i in items if i["metadata"]["namespace"] == namespace]) == 520
    assert cluster.requests - before >= 2


def test_a_server_certificate_the_kubeconfig_does_not_trust_is_one_clear_error(
    tmp_path: Path, kubeconfig: Path
) -> None:
    config: dict[str, Any] = yaml.safe_load(kubeconfig.read_text())
    other_ca = tmp_path / "other-ca.crt"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(tmp_path / "k"),
            "-out",
            str(other_ca),
            "-subj",
            "/CN=other",
            "-days",
            "1",
        ],
        check=True,
        capture_output=True,
    )
    config["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(
        other_ca.read_bytes()
    ).decode()
    path = tmp_path / "untrusted.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    cluster = Cluster(resolve_target(str(path), None, {}))
    with pytest.raises(KubeError) as caught:
        cluster.version()
    assert "cannot reach the Kubernetes API at https://127.0.0.1:" in caught.value.message
    assert "certificate verify failed" in caught.value.message
