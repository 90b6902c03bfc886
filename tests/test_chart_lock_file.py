"""deployer.lock.yaml as a file: what it reads, refuses (file:line), writes (sorted, shared entries)
and how a partial `lock -e ENV` keeps the other environments' entries. No helm, no network."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from deployer.chartlock import merged
from deployer.errors import SpecError
from deployer.lockfile import Entry, LockFile, _read_fast, load_lock, render, write


def entry(envs: tuple[str, ...], version: str, digest: str = "sha256:" + "a" * 64) -> Entry:
    return Entry(envs, "example/api", "https://charts.example.com", "^1.2", False, version, digest)


def test_a_written_lock_reads_back_the_same_and_is_not_rewritten_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "deployer.lock.yaml"
    lock = LockFile(
        path,
        {
            "b/api": [entry(("prod",), "1.3.0"), entry(("dev",), "1.10.0")],
            "a/x": [entry(("dev",), "2.0.0")],
            "c/y": [],
        },
    )
    assert write(lock)
    again = load_lock(path)
    assert again is not None
    assert again.releases["b/api"] == sorted(lock.releases["b/api"], key=lambda e: e.environments)
    assert again.entry("b/api", "dev") == entry(("dev",), "1.10.0")  # "1.10.0" stays a string
    mtime = path.stat().st_mtime_ns
    assert not write(LockFile(path, again.releases))
    assert path.stat().st_mtime_ns == mtime
    text = render(lock)
    assert text.index('"a/x"') < text.index('"b/api"')
    assert '"c/y"' not in text


def test_locking_one_environment_keeps_the_others_and_shares_equal_entries(tmp_path: Path) -> None:
    from deployer.chartlock import Request, Resolved
    from deployer.errors import Mark
    from deployer.project import ChartRef

    old = LockFile(tmp_path / "l", {"apps/api": [entry(("dev", "prod", "staging"), "1.2.0")]})
    ref = ChartRef("repo", "example/api", "api", "^1.2", "https://charts.example.com", repository="example")
    req = Request("apps/api", "dev", ref, "^1.2", False, Mark("deployer.yaml", 1, 1))
    new = merged(old, old.path, [Resolved(req, entry(("dev",), "1.3.0"))], ["dev"])
    assert [(e.environments, e.version) for e in new.releases["apps/api"]] == [
        (("dev",), "1.3.0"),
        (("prod", "staging"), "1.2.0"),
    ]
    back = merged(new, old.path, [Resolved(req, entry(("dev",), "1.2.0"))], ["dev"])
    assert [(e.environments, e.version) for e in back.releases["apps/api"]] == [
        (("dev", "prod", "staging"), "1.2.0")
    ]


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("releases: [1]\n", "1:1", "a lock file maps 'releases' to their entries"),
        ("lockVersion: 2\nreleases: {}\n", "1:14", "lockVersion 2 is not 1"),
        ('releases:\n  "a/b": {x: 1}\n', "2:10", "release 'a/b' must list its entries"),
        (
            'releases:\n  "a/b":\n    - environments: [dev]\n      chart: c\n      version: "1"\n'
            '      digest: "sha256:00"\n      extra: 1\n',
            "7:7",
            "unknown key 'extra'",
        ),
        (
            'releases:\n  "a/b":\n    - environments: []\n      chart: c\n      version: "1"\n'
            '      digest: "sha256:00"\n',
            "3:21",
            "'environments' must list environment names",
        ),
        (
            'releases:\n  "a/b":\n    - environments: [dev]\n      chart: c\n      digest: "sha256:00"\n',
            "3:7",
            "'version' must be a non-empty string",
        ),
    ],
)
def test_a_lock_file_edited_wrong_is_an_error_at_its_line(
    tmp_path: Path, text: str, where: str, message: str
) -> None:
    path = tmp_path / "deployer.lock.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as raised:
        load_lock(path)
    assert f":{where}: {message} in the lock file" in raised.value.render()
    assert "run `deployer lock`" in raised.value.render()


def test_a_spec_of_local_charts_has_nothing_to_lock_and_gets_no_lock_file(tmp_path: Path) -> None:
    from testing.cli import run

    (tmp_path / "chart").mkdir()
    (tmp_path / "chart" / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 1.0.0\n")
    (tmp_path / "deployer.yaml").write_text(
        "environments: {dev: {}}\nreleases:\n  - {name: a, chart: ./chart, version: ^1}\n"
    )
    for argv in (["lock"], ["lock", "--check"]):
        result = run(argv, tmp_path)
        assert (result.code, result.out) == (0, "no repository or OCI release: nothing to lock\n")
    assert not (tmp_path / "deployer.lock.yaml").exists()


_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)


@given(
    st.dictionaries(
        _text,
        st.lists(
            st.builds(
                Entry,
                st.lists(_text, min_size=1, max_size=3).map(tuple),
                _text,
                st.one_of(st.none(), _text),
                st.one_of(st.none(), _text),
                st.booleans(),
                _text,
                _text.map(lambda t: "sha256:" + t),
                st.one_of(st.none(), _text),
            ),
            min_size=1,
            max_size=2,
        ),
        max_size=3,
    )
)
def test_the_fast_reading_of_a_written_lock_is_what_yaml_reads(releases: dict[str, list[Entry]]) -> None:
    text = render(LockFile(Path("deployer.lock.yaml"), releases))
    fast = _read_fast(text)  # None: the text needs the YAML reader (a character beyond the BMP)
    assert fast is None or fast == yaml.safe_load(text)
    lock = load_lock_text(text)
    assert lock == {k: sorted(v, key=lambda e: e.environments) for k, v in releases.items()}


def load_lock_text(text: str) -> dict[str, list[Entry]]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "deployer.lock.yaml"
        path.write_text(text, encoding="utf-8")
        lock = load_lock(path)
        assert lock is not None
        return lock.releases
