"""Secret texts masked wherever they appear: in resource diffs, drift, the values table, helm's
errors. Pure.

Masking by values path (deployer/secrets.py) hides a sensitive value in the values table, and
manifests.py hides a Secret's data; but a chart can render the same text anywhere (ConfigMap data,
an env var, an annotation, a command arg, b64enc'd into another object). A Redactor knows the secret
texts of one release and replaces every occurrence of them in a text with MASK.

The secret texts of a release (docs/diff.md, rule 6, states this for users):
1. every leaf at or below a `sensitive` path of its values, desired and observed (the old value can
   be in the old manifest): strings as they are, numbers as JSON writes them;
2. every value of a Secret's `data` (decoded, and as written) and `stringData`, in the desired and
   observed manifests.
Not secrets: booleans and null, texts YAML reads as them ("true", "null", ...), and texts shorter
than MIN_LENGTH characters. Masking `true`, `on`, `1` or `app` everywhere would hide the diff
itself, and such values protect nothing. A number is masked as text: a sensitive `5432` also hides
a port 5432 elsewhere in the diff, which is the price of never showing it.

Where a secret text is masked (docs/diff.md, rule 6):
- values, never mapping keys: in a resource diff, the key of a `key: value` line is left as it is
  (grafana's Secret holds `admin` as `admin-user`: its keys must still read `admin-user`,
  `admin-password`), unless the key is a secret text whole (a chart that writes a password as a
  key);
- a secret text of MIN_EMBEDDED characters or more wherever it occurs in a value (inside a DSN, a
  command line, a longer string);
- a shorter one (4 to 7 characters, typically a default user name such as `admin` or `root`) only
  where it stands as a word of its own: not touching a letter, digit, `_`, `-` or `.`. So
  `user: admin`, `--user=admin` and `postgres://admin:...@db` are masked, while `grafana-admin`,
  `admin.conf` and `administrator` are not: a short text inside a longer name is that name, and
  masking every occurrence would hide the diff itself.
Free text (helm's errors, notes) has no keys: there every value rule applies to every line.

Each secret text is masked in every form a chart or our own YAML output gives it: as it is;
JSON-escaped (toJson, YAML double quotes); YAML single-quoted (`'` doubled); URL-encoded (urlquery,
DSNs); each line of a multi-line text on its own (YAML splits them) when at least MIN_LINE_LENGTH
long; and base64 (b64enc): the whole encoding, plus the run of characters the text alone decides
when it is encoded inside a longer text (one per byte offset), when at least MIN_BASE64 long.
Overlapping matches are merged into one mask, so a secret inside a longer one leaves no fragment of
the longer one.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from functools import cached_property
from typing import Any

from deployer.errors import HelmError
from deployer.manifests import SECRET_FIELDS, ResourceChange, is_secret, parse_manifest
from deployer.merge import leaves
from deployer.secrets import MASK, YAML_BOOL_OR_NULL, is_sensitive

MIN_LENGTH = 4
# A secret text at least this long is masked wherever it occurs; a shorter one only as a word.
MIN_EMBEDDED = 8
# Short lines of a multi-line secret are mostly structure shared with plain text (`server:`,
# `enabled: true`); masking them would hide ordinary lines of other objects.
MIN_LINE_LENGTH = 16
COMPILE_AFTER = 64  # texts a redactor scans with `in` before it compiles one pattern
# An embedded base64 run shorter than this matches unrelated base64 (certificates, binaryData).
MIN_BASE64 = 8
_DOCUMENT_START = re.compile(r"^---(?=\s|$)", re.MULTILINE)
_WORD = r"A-Za-z0-9_.\-"  # what a short secret text must not touch to stand as a word
# The key of a YAML block mapping line as our dumper writes it (after the diff's +/-/space and the
# indentation, and `- ` of a list item): plain, single- or double-quoted, then `:` and a blank.
_KEY = re.compile(
    r"""[ ]*(?:- )*(?P<key>'(?:[^']|'')*'|"(?:[^"\\]|\\.)*"|[^\s'"#\-?:,\[\]{}&*!|>%@`][^\n]*?):(?= |$)"""
)
_DIFF_HEADER = ("--- ", "+++ ", "@@ ")
_NOTES = frozenset({"missing", "refused"})  # ResourceChange kinds whose text is a sentence, not a diff

Side = tuple[Mapping[str, Any], str]  # a release's values and its manifest, desired or observed


class Redactor:
    """Masks every occurrence of a set of secret texts (str, or bytes from a Secret's data).

    The secrets are read on first use, so a generator defers the work of finding them (parsing the
    manifests again) to the releases whose diffs are not empty.
    """

    def __init__(self, secrets: Iterable[str | bytes] = ()) -> None:
        self._secrets = secrets
        self._scans = 0

    def __repr__(self) -> str:  # never show a secret, even in a traceback or a debugger
        return "Redactor(...)"

    @cached_property
    def _by_rule(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(forms masked anywhere, forms masked as words only), each longest first."""
        anywhere: set[str] = set()
        words: set[str] = set()
        for secret in self._secrets:
            forms = _forms(secret)
            (anywhere if _length(secret) >= MIN_EMBEDDED else words).update(forms)
        words -= anywhere

        def order(found: set[str]) -> tuple[str, ...]:
            return tuple(sorted(found, key=lambda s: (-len(s), s)))

        return order(anywhere), order(words)

    @cached_property
    def _needles(self) -> tuple[str, ...]:
        anywhere, words = self._by_rule
        return tuple(sorted((*anywhere, *words), key=lambda s: (-len(s), s)))

    @cached_property
    def _words(self) -> re.Pattern[str] | None:
        words = self._by_rule[1]
        if not words:
            return None
        return re.compile(f"(?<![{_WORD}])(?:{'|'.join(map(re.escape, words))})(?![{_WORD}])")

    @cached_property
    def _any(self) -> re.Pattern[str] | None:
        # One scan finds whether any form occurs: ~10x faster than a find per form, and most texts
        # hold none. It cannot report overlapping matches, hence _occurrences for those that do.
        return re.compile("|".join(map(re.escape, self._needles))) if self._needles else None

    def _holds_any(self, text: str) -> bool:
        # Compiling that pattern costs ~14 ms for a release whose Secrets hold certificates, more
        # than the few texts of most releases take to search with `in` (issue 14: 0.8 s of an
        # install plan at N=50); it pays off only for a redactor that scans many texts.
        self._scans += 1
        if self._scans <= COMPILE_AFTER:
            return any(needle in text for needle in self._needles)
        return self._any is not None and self._any.search(text) is not None

    def _spans(self, text: str) -> list[tuple[int, int]]:
        spans = list(_occurrences(text, self._by_rule[0]))
        if self._words is not None:
            spans += [m.span() for m in self._words.finditer(text)]
        return _merged(spans)

    def redact(self, text: str) -> str:
        """`text` with every secret text masked (free text: helm's errors, a values cell)."""
        if not text or not self._needles or not self._holds_any(text):
            return text
        return _masked(text, self._spans(text))

    def redact_diff(self, diff: str) -> str:
        """A unified diff of YAML objects with secret texts masked in values, never in keys."""
        if not diff or not self._needles or not self._holds_any(diff):
            return diff
        kept, keys = [], {}  # one scan of the whole diff; only lines with a match are parsed
        for start, end in self._spans(diff):
            line = diff.rfind("\n", 0, start) + 1
            if line not in keys:
                stop = diff.find("\n", line)
                keys[line] = self._key(diff[line : stop if stop >= 0 else len(diff)])
            key = keys[line]
            if key is not None and line + key[0] <= start and end <= line + key[1]:
                continue  # inside a mapping key that is not a secret text whole
            kept.append((start, end))
        return _masked(diff, kept)

    def _key(self, line: str) -> tuple[int, int] | None:
        """Where the mapping key of a diff line is, unless the key is a secret text whole."""
        if line.startswith(_DIFF_HEADER):
            return None
        found = _KEY.match(line, 1)
        if found is None or found.group("key").strip("'\"") in self._needles:
            return None
        return found.span("key")

    def value(self, value: Any) -> Any:
        """A values-table value with secret texts masked in its strings (and numbers)."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, int | float) and not isinstance(value, bool):
            shown = json.dumps(value)
            return value if self.redact(shown) == shown else MASK
        return value

    def changes(self, changes: Iterable[ResourceChange]) -> tuple[ResourceChange, ...]:
        # A change's text is a YAML diff, but for a note (a drift check's `missing`, `refused`).
        return tuple(
            replace(c, diff=self.redact(c.diff) if c.change in _NOTES else self.redact_diff(c.diff))
            for c in changes
        )


NO_REDACTION = Redactor()


def for_release(sensitive: Sequence[str], sides: Iterable[Side]) -> Redactor:
    """The redactor of one release, from its sensitive paths and both sides of its plan."""
    return Redactor(_release_secrets(tuple(sensitive), tuple(sides)))


def for_values(values: Mapping[str, Any], sensitive: Sequence[str]) -> Redactor:
    """The redactor of values alone (before anything is rendered, e.g. for helm's errors)."""
    return for_release(sensitive, [(values, "")])


@contextmanager
def masked_errors(redactor: Redactor) -> Iterator[None]:
    """Re-raise a HelmError with secret texts masked in its stderr (helm quotes values lines)."""
    try:
        yield
    except HelmError as exc:
        # `from None`: the original error, with the secret in it, must not print as a cause.
        raise exc.redacted(redactor.redact) from None


def _release_secrets(sensitive: tuple[str, ...], sides: tuple[Side, ...]) -> Iterator[str | bytes]:
    for values, manifest in sides:
        if sensitive:
            for path, value in leaves(values):
                if is_sensitive(path, sensitive):
                    yield from _scalars(value)
        yield from _secret_data(manifest)


def _scalars(value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        for sub in value.values():
            yield from _scalars(sub)
    elif isinstance(value, list):
        for sub in value:
            yield from _scalars(sub)
    elif isinstance(value, str):
        yield value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield json.dumps(value)
    elif value is not None and not isinstance(value, bool):
        yield str(value)  # dates and other YAML-only types, as helm receives them


def _secret_data(manifest: str) -> Iterator[str | bytes]:
    for doc in _secret_documents(manifest):
        for field in SECRET_FIELDS:
            data = doc.get(field)
            if not isinstance(data, Mapping):
                continue
            for value in data.values():
                if value is None:
                    continue
                if field != "data":
                    yield str(value)
                    continue
                try:  # its base64 forms include the text as written
                    yield base64.b64decode(str(value), validate=True)
                except (binascii.Error, ValueError):
                    yield str(value)  # not base64 (the API server would refuse it): as written


def _secret_documents(manifest: str) -> Iterator[dict[str, Any]]:
    # Parsing every document again costs as much as the diff's own parse; only a document with
    # the word `Secret` in it can be one (YAML itself starts a document at every `---` line).
    for chunk in _DOCUMENT_START.split(manifest):
        if "Secret" in chunk:
            yield from (doc for key, doc in parse_manifest(chunk).items() if is_secret(key))


def _forms(secret: str | bytes) -> set[str]:
    if isinstance(secret, bytes):
        try:
            return _forms(secret.decode())
        except UnicodeDecodeError:  # binary (a keystore): only its base64 can appear in a text
            return _base64_forms(secret) if len(secret) >= MIN_LENGTH else set()
    if not _is_secret_text(secret):
        return set()
    forms = {
        secret,
        json.dumps(secret, ensure_ascii=False)[1:-1],
        secret.replace("'", "''"),
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret, safe=""),
    }
    forms |= {line.strip() for line in secret.splitlines() if len(line.strip()) >= MIN_LINE_LENGTH}
    forms |= _base64_forms(secret.encode())
    return {f for f in forms if _is_secret_text(f)}


def _length(secret: str | bytes) -> int:
    if isinstance(secret, bytes):
        try:
            return len(secret.decode())
        except UnicodeDecodeError:
            return len(secret)
    return len(secret)


def _masked(text: str, spans: Iterable[tuple[int, int]]) -> str:
    out, pos = [], 0
    for start, end in spans:
        out += [text[pos:start], MASK]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _is_secret_text(text: str) -> bool:
    return len(text) >= MIN_LENGTH and text.lower() not in YAML_BOOL_OR_NULL


def _base64_forms(raw: bytes) -> set[str]:
    """The base64 of `raw`, and for each byte offset at which it may start inside a longer encoded
    text, the characters that depend on its bits only (each base64 character holds 6 bits)."""
    forms = {base64.b64encode(raw).decode()}
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + raw).decode()
        first = -(-8 * offset // 6)  # the first character with none of the offset's bits
        end = 8 * (offset + len(raw)) // 6  # past the last character with none of what follows
        if end - first >= MIN_BASE64:
            forms.add(encoded[first:end])
    return forms


def _occurrences(text: str, needles: Sequence[str]) -> Iterator[tuple[int, int]]:
    for needle in needles:
        start = text.find(needle)
        while start >= 0:
            yield start, start + len(needle)
            start = text.find(needle, start + 1)


def _merged(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out
