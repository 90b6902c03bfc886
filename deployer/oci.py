"""The OCI distribution API edge, for `deployer lock`: a chart's tags and a tag's manifest digest.

Helm has no command that lists a chart's tags (it reads them itself to resolve a `--version` range),
so deployer asks the registry as helm does: GET /v2/<name>/tags/list (following `Link` pages), with
the repository's credentials when it has some, answering a Bearer challenge with a token from the
realm it names, or a Basic one directly.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from deployer.errors import DeployerError

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
TIMEOUT = 30.0


class RegistryError(DeployerError):
    """The registry refused or failed a request."""


@dataclass(frozen=True)
class ChartLocation:
    base: str  # http(s)://host
    name: str  # the repository path in the registry (charts/hello)
    username: str | None = None
    password: str | None = None


def location(url: str, *, plain_http: bool, username: str | None, password: str | None) -> ChartLocation:
    """Where oci://host/path/chart lives in the distribution API."""
    rest = url.removeprefix("oci://")
    host, _, name = rest.partition("/")
    return ChartLocation(f"{'http' if plain_http else 'https'}://{host}", name, username, password)


def tags(chart: ChartLocation) -> list[str]:
    """Every tag of the chart's repository (all pages)."""
    found: list[str] = []
    url: str | None = f"{chart.base}/v2/{chart.name}/tags/list?n=1000"
    while url:
        body, headers = _request(chart, url, "GET", {})
        found.extend(json.loads(body or b"{}").get("tags") or [])
        url = _next_page(chart.base, headers.get("Link", ""))
    return found


def manifest_digest(chart: ChartLocation, tag: str) -> str:
    """The sha256 digest of the manifest `tag` names now."""
    _body, headers = _request(
        chart, f"{chart.base}/v2/{chart.name}/manifests/{tag}", "HEAD", {"Accept": MANIFEST_TYPES}
    )
    digest = headers.get("Docker-Content-Digest", "")
    if not digest.startswith("sha256:"):
        raise RegistryError(f"{chart.base}/{chart.name}:{tag}: the registry sent no manifest digest")
    return digest


def _next_page(base: str, link: str) -> str | None:
    match = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', link)
    return urllib.parse.urljoin(base, match[1]) if match else None


def _request(
    chart: ChartLocation, url: str, method: str, headers: Mapping[str, str]
) -> tuple[bytes, Mapping[str, str]]:
    try:
        return _open(url, method, dict(headers))
    except urllib.error.HTTPError as exc:
        if exc.code != 401:
            raise _failed(chart, url, exc) from None
        challenge = exc.headers.get("WWW-Authenticate", "")
    auth = _authorization(chart, challenge)
    try:
        return _open(url, method, {**headers, "Authorization": auth})
    except urllib.error.HTTPError as exc:
        raise _failed(chart, url, exc) from None


def _open(url: str, method: str, headers: dict[str, str]) -> tuple[bytes, Mapping[str, str]]:
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.read(), response.headers
    except urllib.error.HTTPError:
        raise
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RegistryError(
            f"cannot reach {url}: {reason}", hint="check the repository URL and the network"
        ) from None


def _authorization(chart: ChartLocation, challenge: str) -> str:
    scheme, _, params = challenge.partition(" ")
    basic = ""
    if chart.username is not None:
        basic = "Basic " + base64.b64encode(f"{chart.username}:{chart.password or ''}".encode()).decode()
    if scheme.lower() == "basic":
        if not basic:
            raise RegistryError(
                f"{chart.base}/{chart.name}: the registry needs credentials",
                hint="set DEPLOYER_REPO_<NAME>_USERNAME and _PASSWORD (or the repository's usernameEnv)",
            )
        return basic
    if scheme.lower() != "bearer":
        raise RegistryError(f"{chart.base}/{chart.name}: unsupported authentication '{challenge}'")
    fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
    realm = fields.pop("realm", "")
    if not realm:
        raise RegistryError(f"{chart.base}/{chart.name}: a Bearer challenge without a realm")
    fields.setdefault("scope", f"repository:{chart.name}:pull")
    token_url = f"{realm}?{urllib.parse.urlencode(fields)}"
    try:
        body, _ = _open(token_url, "GET", {"Authorization": basic} if basic else {})
    except urllib.error.HTTPError as exc:
        raise _failed(chart, token_url, exc) from None
    data = json.loads(body or b"{}")
    token = data.get("token") or data.get("access_token")
    if not token:
        raise RegistryError(f"{chart.base}/{chart.name}: the token service sent no token")
    return f"Bearer {token}"


def _failed(chart: ChartLocation, url: str, exc: urllib.error.HTTPError) -> RegistryError:
    what = {401: "refused the credentials", 403: "denied access", 404: "has no such chart"}.get(
        exc.code, f"answered HTTP {exc.code}"
    )
    return RegistryError(
        f"registry {chart.base} {what} ({chart.name})",
        hint="check the chart URL and the repository's credentials" if exc.code in {401, 403, 404} else "",
    )
