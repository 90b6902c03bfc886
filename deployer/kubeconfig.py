"""Which cluster, and as whom: kubeconfig files merged and a context picked as kubectl and helm do,
in-cluster service account configuration when there is no kubeconfig, and helm's storage driver.

Every problem is one DeployerError naming the kubeconfig file and the entry (user, cluster or
context) it is about. Relative paths are resolved against the directory of the file that holds them
(client-go's rule), so a merged KUBECONFIG of several files reads the same files helm reads.
No lightkube here: deployer/kube.py turns a KubeTarget into a client.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deployer.errors import DeployerError, Mark, UsageError

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
IN_CLUSTER = "in-cluster"  # the one context of an in-cluster target
KINDS = {"clusters": "cluster", "contexts": "context", "users": "user"}
EXEC_API_VERSIONS = (
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
    "client.authentication.k8s.io/v1alpha1",
)
# Fields holding a file path, per entry kind (client-go's ResolvePaths); exec.command only when it
# contains a slash (a bare name is looked up on PATH).
PATH_FIELDS = {
    "cluster": ("certificate-authority",),
    "user": ("client-certificate", "client-key", "tokenFile"),
}


class KubeconfigError(DeployerError):
    """A kubeconfig that cannot work, said in one line: the file, the entry, what is wrong, the fix."""

    def __init__(self, *, file: str, problem: str, kind: str = "", entry: str = "", fix: str = "") -> None:
        self.file, self.kind, self.entry, self.problem, self.fix = file, kind, entry, problem, fix
        where = f"kubeconfig {file}" + (f", {kind} '{entry}'" if kind else "")
        super().__init__(f"{where}: {problem}" + (f"; {fix}" if fix else ""))


@dataclass(frozen=True)
class KubeTarget:
    """Which cluster: the same kubeconfig and context helm will be given, and where helm keeps its
    releases there (`driver`: secret or configmap)."""

    kubeconfig: str | None  # the --kubeconfig value passed on to helm (None: helm resolves it itself)
    context: str
    server: str
    config: Mapping[str, Any]  # the selected context, its cluster and its user; paths absolute
    source: str  # for messages: the file(s) the configuration came from
    driver: str = "secret"
    in_cluster: bool = False

    def helm_flags(self) -> list[str]:
        flags = ["--kube-context", self.context]
        if self.kubeconfig:
            flags += ["--kubeconfig", self.kubeconfig]
        return flags

    def entry(self, kind: str) -> tuple[str, dict[str, Any]]:
        """The selected context's cluster or user: (name, fields); ("", {}) when there is none."""
        for item in self.config.get(f"{kind}s") or []:
            return str(item["name"]), dict(item.get(kind) or {})
        return "", {}

    def file_of(self, kind: str) -> str:
        """The kubeconfig file that defines the selected context's cluster or user."""
        for item in self.config.get(f"{kind}s") or []:
            return str(item.get("_file") or self.source)
        return self.source


def helm_driver(environ: Mapping[str, str]) -> str:
    """HELM_DRIVER as deployer reads it: `secret` or `configmap`; the drivers whose releases deployer
    cannot see are refused before anything runs."""
    raw = environ.get("HELM_DRIVER", "")
    if raw in ("", "secret", "secrets"):
        return "secret"
    if raw in ("configmap", "configmaps"):
        return "configmap"
    if raw in ("memory", "sql"):
        raise UsageError(
            f"HELM_DRIVER={raw} is not supported: deployer reads helm's releases from the cluster "
            f"(Secrets or ConfigMaps), and {raw}-stored releases are invisible to it",
            hint="unset HELM_DRIVER (secret) or set HELM_DRIVER=configmap; nothing was done",
        )
    raise UsageError(
        f"HELM_DRIVER={raw} is not a helm storage driver (secret, configmap, memory or sql)",
        hint="unset HELM_DRIVER or set it to secret or configmap; nothing was done",
    )


def kubeconfig_files(explicit: str | None, environ: Mapping[str, str]) -> list[Path]:
    if explicit:
        return [Path(explicit).expanduser()]
    if environ.get("KUBECONFIG"):
        return [Path(p).expanduser() for p in environ["KUBECONFIG"].split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def resolve_target(
    explicit: str | None,
    context: str | None,
    environ: Mapping[str, str],
    *,
    context_source: str = "--kube-context",
) -> KubeTarget:
    """Merge kubeconfig files like kubectl and helm (first file wins per name), pick a context
    (`context`, else current-context) and check that its cluster and user can work. With no
    kubeconfig file at all and KUBERNETES_SERVICE_HOST set, the pod's service account is the target.
    `context_source` says where `context` came from, for messages."""
    driver = helm_driver(environ)
    files = kubeconfig_files(explicit, environ)
    merged: dict[str, Any] = {kind: [] for kind in KINDS}
    seen: dict[str, set[str]] = {kind: set() for kind in KINDS}
    current: str | None = None
    found = []
    for path in files:
        if not path.is_file():
            if explicit:
                raise UsageError(f"kubeconfig {path} does not exist", hint="fix --kubeconfig")
            continue
        found.append(str(path))
        data = _load(path)
        current = current or data.get("current-context") or None
        for kind, entries in merged.items():
            for entry in _entries(path, data, kind):
                if entry["name"] not in seen[kind]:
                    seen[kind].add(entry["name"])
                    entries.append(entry)
    if not found:
        if environ.get("KUBERNETES_SERVICE_HOST"):
            return in_cluster_target(environ, context, driver, looked_at=", ".join(map(str, files)))
        raise UsageError(
            f"no kubeconfig found (looked at {', '.join(map(str, files))})",
            hint="pass --kubeconfig, set KUBECONFIG, create ~/.kube/config, or run in a pod with a "
            "service account (KUBERNETES_SERVICE_HOST)",
        )
    source = ", ".join(found)
    name = context or current
    contexts = {c["name"]: c for c in merged["contexts"]}
    if not name or name not in contexts:
        known = ", ".join(sorted(contexts)) or "(none)"
        if not name:
            raise UsageError(
                f"no current kube context in {source} (known: {known})", hint="pass --kube-context NAME"
            )
        origin = f" ({context_source})" if context else ""
        raise UsageError(
            f"kube context '{name}'{origin} not found in {source} (known: {known})",
            hint="pass --kube-context NAME, or add the context to the kubeconfig",
        )
    config = _selected(contexts[name], merged)
    _, cluster = KubeTarget("", name, "", config, source).entry("cluster")
    kubeconfig = os.pathsep.join(str(f) for f in files) if explicit else None
    target = KubeTarget(kubeconfig, name, str(cluster.get("server", "")), config, source, driver)
    check_target(target, environ)
    return target


def _load(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise KubeconfigError(file=str(path), problem=f"cannot read it ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if mark is None:
            raise KubeconfigError(file=str(path), problem=f"not valid YAML: {problem}") from None
        raise DeployerError(
            f"kubeconfig is not valid YAML: {problem}", mark=Mark(str(path), mark.line + 1, mark.column + 1)
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise KubeconfigError(
            file=str(path), problem=f"is a YAML {type(data).__name__}, not a kubeconfig (a mapping)"
        )
    return data


def _entries(path: Path, data: Mapping[str, Any], kinds: str) -> list[dict[str, Any]]:
    """The named entries of one section, each tagged with its file and with paths made absolute."""
    kind = KINDS[kinds]
    raw = data.get(kinds) or []
    if not isinstance(raw, list):
        raise KubeconfigError(file=str(path), problem=f"`{kinds}` is not a list")
    out = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise KubeconfigError(file=str(path), problem=f"{kinds}[{index}] has no name")
        body = item.get(kind) or {}
        if not isinstance(body, dict):
            raise KubeconfigError(
                file=str(path), kind=kind, entry=item["name"], problem=f"`{kind}` is not a mapping"
            )
        out.append({"name": item["name"], kind: _absolute(path.parent, kind, body), "_file": str(path)})
    return out


def _absolute(base: Path, kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(body)
    for key in PATH_FIELDS.get(kind, ()):
        if isinstance(out.get(key), str) and out[key]:
            out[key] = str(base / out[key])  # an absolute path stays as it is
    exec_ = out.get("exec")
    if isinstance(exec_, dict) and "/" in str(exec_.get("command", "")):
        out["exec"] = {**exec_, "command": str(base / str(exec_["command"]))}
    return out


def _selected(context: Mapping[str, Any], merged: Mapping[str, Any]) -> dict[str, Any]:
    """The context with its cluster and user, or an error naming what it refers to and is missing."""
    name, body = context["name"], context.get("context") or {}
    out: dict[str, Any] = {"contexts": [context], "clusters": [], "users": [], "current-context": name}
    for kind in ("cluster", "user"):
        ref = body.get(kind)
        if not ref:
            if kind == "cluster":
                raise KubeconfigError(
                    file=context["_file"], kind="context", entry=name, problem="names no cluster"
                )
            continue
        entry = next((e for e in merged[f"{kind}s"] if e["name"] == ref), None)
        if entry is None:
            raise KubeconfigError(
                file=context["_file"],
                kind="context",
                entry=name,
                problem=f"names {kind} '{ref}', which no kubeconfig file defines",
            )
        out[f"{kind}s"].append(entry)
    return out


def check_target(target: KubeTarget, environ: Mapping[str, str]) -> None:
    """Everything about the selected cluster and user that can be known without a request."""
    cluster_name, cluster = target.entry("cluster")
    in_cluster = target.file_of("cluster")
    if not cluster.get("server"):
        raise KubeconfigError(file=in_cluster, kind="cluster", entry=cluster_name, problem="has no server")
    if cluster.get("certificate-authority") and not cluster.get("certificate-authority-data"):
        _readable(
            in_cluster, "cluster", cluster_name, "certificate-authority", cluster["certificate-authority"]
        )
    user_name, user = target.entry("user")
    if not user_name:
        return
    file = target.file_of("user")
    if user.get("auth-provider"):
        provider = (user["auth-provider"] or {}).get("name", "?")
        raise KubeconfigError(
            file=file,
            kind="user",
            entry=user_name,
            problem=f"auth-provider '{provider}' is not supported (kubectl dropped auth providers in 1.26)",
            fix="use an exec credential plugin instead (e.g. kubelogin, gke-gcloud-auth-plugin)",
        )
    for key, data_key in (
        ("client-certificate", "client-certificate-data"),
        ("client-key", "client-key-data"),
    ):
        if user.get(key) and not user.get(data_key):
            _readable(file, "user", user_name, key, user[key])
    has_cert = bool(user.get("client-certificate") or user.get("client-certificate-data"))
    has_key = bool(user.get("client-key") or user.get("client-key-data"))
    if has_cert != has_key:
        missing = "client-key" if has_cert else "client-certificate"
        raise KubeconfigError(
            file=file,
            kind="user",
            entry=user_name,
            problem=f"has a client {'certificate' if has_cert else 'key'} but no {missing}",
        )
    if user.get("tokenFile") and not user.get("token"):
        _readable(file, "user", user_name, "tokenFile", user["tokenFile"])
    if isinstance(user.get("exec"), dict):
        _check_exec(file, user_name, user["exec"], environ)


def _readable(file: str, kind: str, entry: str, key: str, path: str) -> None:
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise KubeconfigError(
            file=file, kind=kind, entry=entry, problem=f"cannot read {key} {path} ({exc.strerror})"
        ) from None


def _check_exec(file: str, user: str, spec: Mapping[str, Any], environ: Mapping[str, str]) -> None:
    command = str(spec.get("command") or "")
    api = str(spec.get("apiVersion") or "")
    if api not in EXEC_API_VERSIONS:
        raise KubeconfigError(
            file=file,
            kind="user",
            entry=user,
            problem=f"exec apiVersion '{api}' is not one of {', '.join(EXEC_API_VERSIONS)}",
        )
    if not command:
        raise KubeconfigError(file=file, kind="user", entry=user, problem="exec has no command")
    if "/" in command:
        found: str | None = command
        problem = (
            f"exec plugin {command} is not an executable file"
            if Path(command).exists()
            else f"exec plugin {command} not found"
        )
    else:
        found = shutil.which(command, path=environ.get("PATH", os.defpath))
        problem = f"exec plugin {command} not found on PATH"
    if found is None or not Path(found).is_file() or not os.access(found, os.X_OK):
        hint = " ".join(str(spec.get("installHint") or "").split())
        raise KubeconfigError(
            file=file,
            kind="user",
            entry=user,
            problem=problem,
            fix=hint or "install the credential plugin or fix users[].user.exec.command",
        )


def in_cluster_target(
    environ: Mapping[str, str], context: str | None, driver: str, *, looked_at: str
) -> KubeTarget:
    """The pod's service account as a target, with a private kubeconfig for helm that names the same
    server, CA file and token file (helm's own in-cluster fallback reads fixed paths)."""
    account = Path(environ.get("DEPLOYER_SERVICEACCOUNT_DIR") or SERVICE_ACCOUNT_DIR)
    host, port = environ["KUBERNETES_SERVICE_HOST"], environ.get("KUBERNETES_SERVICE_PORT", "")
    source = f"in-cluster config ({account}, KUBERNETES_SERVICE_HOST={host})"
    if context and context != IN_CLUSTER:
        raise UsageError(
            f"kube context '{context}' not found: no kubeconfig found (looked at {looked_at}), and the "
            f"in-cluster config has only the context '{IN_CLUSTER}'",
            hint="mount a kubeconfig that has this context and set KUBECONFIG; nothing was done",
        )
    if not port:
        raise UsageError(
            "in-cluster config: KUBERNETES_SERVICE_HOST is set but KUBERNETES_SERVICE_PORT is not",
            hint="pass --kubeconfig, or set KUBERNETES_SERVICE_PORT",
        )
    token, ca = account / "token", account / "ca.crt"
    for what, path in (("service account token", token), ("cluster CA", ca)):
        try:
            path.read_bytes()
        except OSError as exc:
            raise UsageError(
                f"in-cluster config: cannot read the {what} {path} ({exc.strerror})",
                hint="mount the pod's service account token (automountServiceAccountToken) or pass "
                "--kubeconfig",
            ) from None
    try:
        namespace = (account / "namespace").read_text().strip() or "default"
    except OSError:
        namespace = "default"
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": IN_CLUSTER, "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": IN_CLUSTER, "user": {"tokenFile": str(token)}}],
        "contexts": [
            {
                "name": IN_CLUSTER,
                "context": {"cluster": IN_CLUSTER, "user": IN_CLUSTER, "namespace": namespace},
            }
        ],
        "current-context": IN_CLUSTER,
    }
    path = _private_kubeconfig(config, environ)
    return KubeTarget(str(path), IN_CLUSTER, server, config, source, driver, in_cluster=True)


def _private_kubeconfig(config: Mapping[str, Any], environ: Mapping[str, str]) -> Path:
    """Write `config` for helm, 0600 in a 0700 directory of deployer's cache, named by its content
    (it holds paths, not credentials: the token stays in the service account's file)."""
    from deployer.cache import cache_dir

    text = yaml.safe_dump(dict(config), sort_keys=True)
    directory = cache_dir(environ) / "kubeconfig"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"in-cluster-{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml"
    if not path.is_file() or path.read_text() != text:
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(partial, path)
    return path
