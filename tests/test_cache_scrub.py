"""The render cache's scrubber: what it hides, that a hit gives back exactly helm's output, and
what it refuses to store."""

from __future__ import annotations

import base64
import re
import stat
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from deployer import cache_scrub
from deployer.cache_scrub import _occurrences, restore, scrub

KEY = b"k" * 32
B64 = base64.b64encode(b"s3cret-password").decode()
RENDER = f"""---
apiVersion: v1
kind: Secret
metadata:
  name: db
data:
  password: "{B64}"
stringData:
  user: app
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  dsn: "postgres://app:s3cret-password@db/app"
  other: "nothing secret here"
"""
VALUES = {"db": {"password": "s3cret-password", "user": "app"}, "replicas": 2}


def test_a_render_round_trips_with_no_secret_text_left() -> None:
    scrubbed = scrub(RENDER, VALUES, ("db.password",), KEY)
    assert scrubbed is not None
    assert "s3cret-password" not in scrubbed and B64 not in scrubbed
    assert "user: app\n" not in scrubbed  # every Secret value, sensitive or not
    assert "nothing secret here" in scrubbed
    assert f"-{len(B64)}bytes" in scrubbed  # the size stays visible
    assert restore(scrubbed, VALUES, ("db.password",), KEY) == RENDER


def test_a_render_without_secrets_is_stored_as_it_is() -> None:
    plain = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: b\n"
    assert scrub(plain, {"a": "b"}, (), KEY) == plain
    assert restore(plain, {"a": "b"}, (), KEY) == plain


def test_other_values_do_not_restore_a_cached_render() -> None:
    scrubbed = scrub(RENDER, VALUES, ("db.password",), KEY)
    assert scrubbed is not None
    other = {"db": {"password": "another-password", "user": "app"}, "replicas": 2}
    assert restore(scrubbed, other, ("db.password",), KEY) is None


def test_tokens_depend_on_the_salt() -> None:
    assert scrub(RENDER, VALUES, ("db.password",), KEY) != scrub(RENDER, VALUES, ("db.password",), b"o" * 32)


def test_a_secret_the_values_cannot_give_back_is_restored_only_from_the_installed_release() -> None:
    made = base64.b64encode(b"sha256sum-of-the-release-name").decode()
    generated = RENDER.replace(B64, made)
    scrubbed = scrub(generated, VALUES, ("db.password",), KEY)
    assert scrubbed is not None and made not in scrubbed
    assert restore(scrubbed, VALUES, ("db.password",), KEY) is None  # template, or not installed
    assert restore(scrubbed, VALUES, ("db.password",), KEY, installed=generated) == generated
    regenerated = RENDER.replace(B64, base64.b64encode(b"randAlphaNum-other").decode())
    assert restore(scrubbed, VALUES, ("db.password",), KEY, installed=regenerated) is None


def test_a_secret_in_a_block_scalar_is_not_cached() -> None:
    block = RENDER.replace("  user: app\n", "  config: |\n    user=app\n    password=s3cret-password\n")
    values = {**VALUES, "config": "user=app\npassword=s3cret-password\n"}
    assert scrub(block, values, ("db.password",), KEY) is None


def test_a_render_that_looks_scrubbed_already_is_not_cached() -> None:
    assert scrub(RENDER + "# SCRUBBED-hmac-\n", VALUES, (), KEY) is None


def test_the_salt_is_private_made_once_and_clears_renders_stored_in_clear(tmp_path: Path) -> None:
    renders = tmp_path / "renders"
    renders.mkdir()
    (renders / "old.yaml").write_text(RENDER)
    salt = cache_scrub.salt(renders)
    assert len(salt) == 32
    assert stat.S_IMODE((renders / "salt").stat().st_mode) == 0o600
    assert not (renders / "old.yaml").exists()
    (renders / "new.yaml").write_text("kept")
    assert cache_scrub.salt(renders) == salt
    assert (renders / "new.yaml").exists()


@given(
    text=st.text(alphabet="ab-c", max_size=40),
    needles=st.sets(st.text(alphabet="ab-c", min_size=1, max_size=5), max_size=6),
)
def test_the_scan_finds_what_one_pattern_of_all_the_texts_would(text: str, needles: set[str]) -> None:
    pattern = re.compile("|".join(re.escape(t) for t in sorted(needles, key=lambda t: (-len(t), t))))
    expected = [(m.start(), m.group(0)) for m in pattern.finditer(text)] if needles else []
    found, end = [], 0
    for start, needle in _occurrences(text, needles):
        if start >= end:
            found.append((start, needle))
            end = start + len(needle)
    assert found == expected
