"""The render cache holds no secret in clear. Pure, but for the salt file.

CI users keep ~/.cache/deployer/renders between runs and upload it to their CI's cache store, so a
cached render must not hold a Secret's data, a sensitive value (an encrypted file's included) or a
secret text inside any other object. Before a render is stored, every such text is replaced by a
token naming a salted digest of it and its size:

    SCRUBBED-hmac-<first 32 hex of HMAC-SHA256(salt, text)>-<N>bytes

The salt is random, one per cache directory (a 0600 file in it), so equal texts in two caches give
different tokens and no table of digests precomputed elsewhere applies. Tokens tell changed from
unchanged and keep sizes, but a diff never sees one: on a cache hit every token is turned back into
its text, found among the texts the release's *current* values can produce (each string or number
leaf, its base64, and the forms of each sensitive text; the cache key already says the values are
the ones the render was made from) and, when the release is installed, among the Secret values of
the manifest helm stored for it. A cached render is thus exactly the render helm would print, and
diffs, `changed` marks and sizes are computed from the real texts, as without a cache.

The second source matters because many charts put into their Secrets texts that no value holds: a
password derived from the release name (`sha256sum`), a certificate from the chart's own defaults.
Before issue 14 such renders were never cached and every diff rendered them again (at N=50 in the
benchmark, 35 of 50 releases). Now they are stored, and a hit needs the installed release to hold
the very same texts (an HMAC match): when it does, the desired text equals the installed one, which
the diff reads anyway; when it does not (a chart that generates a new random password on every
render, or no release installed yet, or `template`), the token is unknown, the cache misses and the
release renders again, exactly as without a cache.

A render is stored only when this round trip is exact: a Secret value written in a form the
scrubber does not recognise (a block scalar, escapes) is not cached and renders again next time.
Charts without Secrets or sensitive values keep the fast path as is.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from deployer.manifests import SECRET_FIELDS, split_documents
from deployer.secrets import YAML_BOOL_OR_NULL, is_sensitive

TOKEN_PREFIX = "SCRUBBED-hmac-"
_TOKEN = re.compile(rf"{TOKEN_PREFIX}([0-9a-f]{{32}})-([0-9]+)bytes")
SALT_FILE = "salt"
MIN_LENGTH = 4  # shorter sensitive texts (and true/false/null) protect nothing and are everywhere
MIN_LINE_LENGTH = 16  # each line of a multi-line sensitive text at least this long is hidden too
_SECRET_DOC = re.compile(r"^kind:[ \t]*['\"]?Secret['\"]?[ \t]*$", re.MULTILINE)
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def salt(directory: Path) -> bytes:
    """The cache directory's salt, created on first use (0600). A new salt means the directory was
    written by a deployer that stored renders in clear: those are removed."""
    path = directory / SALT_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = directory / f"{SALT_FILE}.{os.getpid()}.tmp"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_bytes(32))
    try:
        os.link(partial, path)  # atomic, and never replaces a salt another run made meanwhile
        for old in directory.glob("*.yaml"):
            old.unlink(missing_ok=True)
    except FileExistsError:
        pass
    finally:
        partial.unlink(missing_ok=True)
    return path.read_bytes()


def digest(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def token(key: bytes, text: str) -> str:
    return f"{TOKEN_PREFIX}{digest(key, text)[:32]}-{len(text.encode())}bytes"


def scrub(output: str, values: Mapping[str, Any], sensitive: Sequence[str], key: bytes) -> str | None:
    """`output` with every secret text replaced by its token; None when it cannot be cached so."""
    if TOKEN_PREFIX in output:
        return None
    secret_texts = secret_values_of(output)
    if secret_texts is None:
        return None
    texts = set(_sensitive_forms(values, sensitive)) | secret_texts
    texts.discard("")
    if not texts:
        return output
    tokens: dict[str, str] = {}
    pieces: list[str] = []
    end = 0
    for start, text in _occurrences(output, texts):
        if start < end:
            continue  # inside a longer (or earlier) text already replaced
        made = token(key, text)
        if tokens.setdefault(made, text) != text:
            return None  # two texts with one token: could not be told apart
        pieces += [output[end:start], made]
        end = start + len(text)
    scrubbed = "".join([*pieces, output[end:]])
    for doc in split_documents(scrubbed):
        if _SECRET_DOC.search(doc) and not _all_tokens(doc):
            return None  # a Secret value written in a form not found as text: keep it out
    if _TOKEN.sub(lambda m: tokens.get(m.group(0), m.group(0)), scrubbed) != output:
        return None  # the tokens would not give the render back
    return scrubbed


def _occurrences(text: str, needles: Iterable[str]) -> list[tuple[int, str]]:
    """Every (start, needle) found in `text`, leftmost first and, at one start, longest first: read
    left to right, skipping those that start inside the previous one, this is what one regular
    expression of all the needles, longest first, would match (without compiling one per render,
    which cost 5 ms a release)."""
    found: list[tuple[int, int, str]] = []
    for needle in needles:
        at = text.find(needle)
        while at != -1:
            found.append((at, -len(needle), needle))
            at = text.find(needle, at + 1)
    found.sort()
    return [(start, needle) for start, _size, needle in found]


def restore(
    text: str, values: Mapping[str, Any], sensitive: Sequence[str], key: bytes, installed: str = ""
) -> str | None:
    """A scrubbed render with every token turned back into its text; None when one is unknown.

    Tokens are looked up among the texts the values can produce, then among the Secret values of
    `installed` (the installed release's stored manifest and hooks), parsed only when needed. Only
    candidates of a size some token names are hashed."""
    if TOKEN_PREFIX not in text:
        return text
    wanted = {m.group(0): int(m.group(2)) for m in _TOKEN.finditer(text)}
    sizes = set(wanted.values())
    known: dict[str, str] = {}

    def learn(candidates: Iterable[str]) -> bool:
        for t in candidates:
            if len(t.encode()) in sizes:
                known[token(key, t)] = t
        return wanted.keys() <= known.keys()

    if not learn(_candidates(values, sensitive)) and not (
        installed and (learn(_scalar_texts_of_secrets(installed)) or learn(secret_values_of(installed) or ()))
    ):
        return None
    return _TOKEN.sub(lambda m: known[m.group(0)], text)


# `key: value` on one line: the value as written, and without the quotes around it.
_SCALAR_LINE = re.compile(r"^[ \t]*[^:#\n]+:[ \t]+(\S[^\n]*?)[ \t]*$", re.MULTILINE)


def _scalar_texts_of_secrets(output: str) -> Iterator[str]:
    """Every one-line scalar of every Secret document, found without parsing YAML (about 10x
    cheaper). Over-inclusive on purpose: a text is only ever used where its salted digest matches a
    token. A value this misses (a block scalar, an escaped string) makes restore parse the YAML."""
    for doc in split_documents(output):
        if not _SECRET_DOC.search(doc):
            continue
        for match in _SCALAR_LINE.finditer(doc):
            text = match.group(1)
            yield text
            if len(text) >= 2 and text[0] == text[-1] == "'":
                yield text[1:-1].replace("''", "'")
            elif len(text) >= 2 and text[0] == text[-1] == '"':
                yield text[1:-1]


def secret_values_of(output: str) -> set[str] | None:
    """Every value of every Secret in a multi-document text; None if one of them is not YAML."""
    texts: set[str] = set()
    for doc in split_documents(output):
        if not _SECRET_DOC.search(doc):
            continue
        try:
            data = yaml.load(doc, Loader=_LOADER)
        except yaml.YAMLError:
            return None
        texts.update(_secret_values(data))
    return texts


def _all_tokens(doc: str) -> bool:
    try:
        data = yaml.load(doc, Loader=_LOADER)
    except yaml.YAMLError:
        return False
    return all(_TOKEN.fullmatch(v) for v in _secret_values(data) if v)


def _secret_values(doc: Any) -> Iterator[str]:
    if not isinstance(doc, dict) or doc.get("kind") != "Secret":
        return
    for field in SECRET_FIELDS:
        entries = doc.get(field)
        if isinstance(entries, dict):
            yield from (_text(v) for v in entries.values() if v is not None)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _sensitive_forms(values: Mapping[str, Any], sensitive: Sequence[str]) -> Iterator[str]:
    """Each sensitive text in the forms a chart renders it: as it is, JSON-escaped, YAML
    single-quoted, URL-encoded, base64, and each long line of a multi-line one."""
    if not sensitive:
        return
    for path, value in _leaves(values, ()):
        if value is None or isinstance(value, bool) or not is_sensitive(path, sensitive):
            continue
        text = _text(value)
        if len(text) < MIN_LENGTH or text.lower() in YAML_BOOL_OR_NULL:
            continue
        yield text
        yield json.dumps(text)[1:-1]
        yield text.replace("'", "''")
        yield urllib.parse.quote(text, safe="")
        yield base64.b64encode(text.encode()).decode()
        yield from (line for line in text.splitlines() if len(line.strip()) >= MIN_LINE_LENGTH)


def _candidates(values: Mapping[str, Any], sensitive: Sequence[str]) -> Iterable[str]:
    """Every text a token of this release's render can stand for."""
    found = set(_sensitive_forms(values, sensitive))
    for _path, value in _leaves(values, ()):
        if value is None or isinstance(value, bool):
            continue
        text = _text(value)
        found.add(text)
        found.add(base64.b64encode(text.encode()).decode())
    return found


def _leaves(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every scalar with the values path it sits under (list items under their list's path)."""
    if isinstance(value, Mapping):
        for k, sub in value.items():
            yield from _leaves(sub, (*path, str(k)))
    elif isinstance(value, list):
        for sub in value:
            yield from _leaves(sub, path)
    else:
        yield path, value
