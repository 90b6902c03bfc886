"""`verify:` a repository or OCI chart's provenance: its `.prov` file (the chart's digest, signed with
PGP) checked against a public keyring before anything is rendered from it, as `helm --verify` does.

The check runs where the chart is fetched (deployer/charts.py): `helm pull --verify` for a chart not
yet cached (helm keeps the `.prov` beside the archive), `helm verify` for a cached one, every run, so
a cached archive is never trusted for having been checked once."""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from deployer.errors import DeployerError, HelmError, SpecError
from deployer.helm import Helm
from deployer.paths import resolved
from deployer.project import ChartRef, Project
from deployer.yamlsource import display_path


def default_keyring() -> Path:
    """helm's own default (cmd/helm: defaultKeyring)."""
    home = os.environ.get("GNUPGHOME")
    return Path(home) / "pubring.gpg" if home else Path.home() / ".gnupg" / "pubring.gpg"


def with_keyring(project: Project, index: int, rel: Any, ref: ChartRef) -> ChartRef:
    """`ref` with the keyring its provenance is checked against, when `verify:` applies to it. A
    release's own `verify: true` on a local chart is an error (a chart directory has no provenance);
    the defaults' applies to repository and OCI charts only."""
    defaults = project.spec.defaults
    own = rel.verify is not None
    if not (rel.verify if own else defaults.verify):
        return ref
    at = ("releases", index) if own else ("defaults",)
    if ref.kind == "local":
        if not own:
            return ref
        raise SpecError(
            f"release '{rel.name}' sets verify: true, but its chart is a local directory, which has no "
            "provenance file to check",
            mark=project.doc.mark((*at, "verify")),
            hint="verify applies to repository and OCI charts (helm --verify); remove it here",
        )
    written = rel.keyring if rel.keyring is not None else defaults.keyring
    keyring_at = ("releases", index, "keyring") if rel.keyring is not None else ("defaults", "keyring")
    keyring = resolved(project.root / written) if written is not None else default_keyring()
    if not keyring.is_file():
        where = project.doc.mark(keyring_at if written is not None else (*at, "verify"))
        raise SpecError(
            f"release '{rel.name}' verifies its chart's provenance against keyring "
            f"{display_path(keyring)}, which does not exist",
            mark=where,
            hint="set keyring: to a public keyring file (gpg --export KEY > pubring.gpg), relative to "
            "deployer.yaml",
        )
    return replace(ref, keyring=str(keyring))


class ProvenanceFailed(DeployerError):
    """The chart's provenance does not check out: nothing is rendered from it."""

    def __init__(self, ref: ChartRef, why: str) -> None:
        super().__init__(
            f"chart {ref.ref} {ref.version}: its provenance could not be verified against keyring "
            f"{display_path(Path(ref.keyring or ''))} (verify: true): {why}",
            hint="the chart is not signed by a key in that keyring, has no .prov file, or its archive "
            "is not the one that was signed; nothing was rendered or changed",
        )


def pull_args(ref: ChartRef) -> list[str]:
    return ["--verify", "--keyring", ref.keyring] if ref.keyring else []


async def check_cached(helm: Helm, ref: ChartRef, archive: Path) -> None:
    """`helm verify` of a cached archive and the `.prov` kept beside it. The signature names the
    archive as helm pulled it (`<chart>-<version>.tgz`), so both are linked under that name first."""
    assert ref.keyring is not None
    with tempfile.TemporaryDirectory(dir=archive.parent, prefix=".verify-") as tmp:
        named = Path(tmp) / f"{ref.name}-{ref.version}.tgz"
        os.link(archive, named)
        os.link(f"{archive}.prov", f"{named}.prov")
        try:
            await helm.run(["verify", str(named), "--keyring", ref.keyring])
        except HelmError as exc:
            raise ProvenanceFailed(ref, _reason(exc)) from None


def failed_pull(ref: ChartRef, exc: HelmError) -> DeployerError:
    """A `helm pull --verify` that failed: a provenance failure said as one, any other (the network,
    the repository) left as helm's error."""
    text = (exc.stderr or "").lower()
    if any(word in text for word in ("openpgp", "provenance", ".prov", "sha256 sum does not match", "verif")):
        return ProvenanceFailed(ref, _reason(exc))
    return exc


def _reason(exc: HelmError) -> str:
    lines = [line.strip() for line in (exc.stderr or "").splitlines() if line.strip()]
    text = lines[-1] if lines else f"helm exited {exc.returncode}"
    return text.removeprefix("Error: ")
