"""deployer.semver reads versions and ranges as helm does (Masterminds/semver v3.5.0)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deployer.semver import Constraints, SemverError, Version, is_exact, sort_key
from tests.semver_cases import CHECK, CHECK_INCLUDING_PRERELEASES, PARSE


@pytest.mark.parametrize(("constraint", "version", "expected"), CHECK)
def test_a_range_matches_as_masterminds_decides(constraint: str, version: str, expected: bool) -> None:
    assert Constraints.parse(constraint).check(Version.parse(version)) is expected


@pytest.mark.parametrize(("constraint", "version", "expected"), CHECK_INCLUDING_PRERELEASES)
def test_with_prereleases_included_a_range_matches_as_masterminds_decides(
    constraint: str, version: str, expected: bool
) -> None:
    assert Constraints.parse(constraint).check(Version.parse(version), include_prerelease=True) is expected


@pytest.mark.parametrize(("constraint", "ors", "count"), PARSE)
def test_a_range_parses_into_the_groups_masterminds_finds(
    constraint: str, ors: int | None, count: int | None
) -> None:
    if ors is None:
        with pytest.raises(SemverError):
            Constraints.parse(constraint)
        return
    parsed = Constraints.parse(constraint)
    assert (len(parsed.groups), len(parsed.groups[0])) == (ors, count)


@pytest.mark.parametrize(
    "text",
    [
        "",
        ">= bar",
        "1.2.3 ||| 2",
        ">=1.0 <",
        "~>",
        "1.2.3.4",
        ">= 1.0.0 || " * 50,
        "||".join(["1"] * 33),
        "1.0.0 -- 2.0.0",
        "\u0661.2.3",  # an Arabic-Indic digit: Go's [0-9] is ASCII only
        "1.2.3\v",  # a vertical tab is no space to Go's \s
    ],
)
def test_what_masterminds_refuses_is_refused(text: str) -> None:
    with pytest.raises(SemverError):
        Constraints.parse(text)


def test_a_hyphen_range_is_rewritten_as_masterminds_does() -> None:
    # rewriteRange's own cases: "1.0.0 - 2.0.0 <=2.0.0" is ">= 1.0.0, <= 2.0.0 <=2.0.0"
    three = Constraints.parse("1.0.0 - 2.0.0 <=2.0.0")
    assert [len(g) for g in three.groups] == [3]
    assert three.check(Version.parse("2.0.0"))
    assert not three.check(Version.parse("2.0.1"))
    assert [len(g) for g in Constraints.parse("2 - 3, 4.0.0 - 5.1").groups] == [4]


@pytest.mark.parametrize(
    ("text", "strict_ok"),
    [("1.2.3", True), ("v1.2.3", False), ("1.2", False), ("01.2.3", False), ("1.2.3-rc.1+b.5", True)],
)
def test_strict_versions_are_what_oci_tags_must_be(text: str, strict_ok: bool) -> None:
    Version.parse(text)  # every one of them is a version to NewVersion
    if strict_ok:
        assert str(Version.parse_strict(text)) == text
    else:
        with pytest.raises(SemverError):
            Version.parse_strict(text)


@pytest.mark.parametrize("text", ["1.2.3-01", "1.2.3-", "1.2.3+", "1.2.3+a..b", "1.2.3-a_b", "x.2.3"])
def test_bad_versions_are_refused(text: str) -> None:
    with pytest.raises(SemverError):
        Version.parse(text)


def test_exact_versions_are_told_from_ranges() -> None:
    assert [is_exact(t) for t in ["1.2.3", "v1.2.3", "1.2.3-rc.1", "1.2", "~1.2.3", "1.2.x", "*", ">=1"]] == [
        True,
        True,
        True,
        False,
        False,
        False,
        False,
        False,
    ]


def test_the_newest_match_skips_prereleases_unless_asked() -> None:
    versions = [Version.parse(v) for v in ["1.0.0", "1.1.0", "1.2.0-rc.1", "2.0.0"]]
    assert str(Constraints.parse("^1").newest(versions)) == "1.1.0"
    assert str(Constraints.parse("^1").newest(versions, include_prerelease=True)) == "1.2.0-rc.1"
    assert str(Constraints.parse(">=1.2.0-0 <2").newest(versions)) == "1.2.0-rc.1"
    assert Constraints.parse("^3").newest(versions) is None


# Property tests: the ordering laws every resolution relies on.
_ident = st.one_of(
    st.integers(0, 30).map(str),
    st.text("abcxyzAZ-", min_size=1, max_size=4).filter(lambda s: not s.isdigit()),
)
versions = st.builds(
    Version,
    st.integers(0, 3),
    st.integers(0, 3),
    st.integers(0, 3),
    st.one_of(st.just(""), st.lists(_ident, min_size=1, max_size=3).map(".".join)),
    st.one_of(st.just(""), st.sampled_from(["build.1", "b2", "x-y"])),
).map(lambda v: Version.parse(str(v)))


@given(versions)
def test_a_version_reads_back_as_itself(v: Version) -> None:
    again = Version.parse(str(v))
    assert again == v and str(again) == str(v)


@given(versions, versions)
def test_compare_is_antisymmetric_and_matches_the_sort_key(a: Version, b: Version) -> None:
    assert a.compare(b) == -b.compare(a)
    if a.compare(b) < 0:
        assert sort_key(a) < sort_key(b)
    if a.compare(b) == 0:
        assert (a.major, a.minor, a.patch, a.pre) == (b.major, b.minor, b.patch, b.pre)


@given(versions, versions, versions)
def test_compare_is_transitive(a: Version, b: Version, c: Version) -> None:
    if a <= b <= c:
        assert a <= c


@given(versions)
def test_a_prerelease_sorts_before_its_release_and_metadata_does_not_count(v: Version) -> None:
    release = Version(v.major, v.minor, v.patch)
    if v.pre:
        assert v < release
    assert Version.parse(f"{release}+meta") == release


@given(versions, versions)
def test_caret_tilde_and_hyphen_ranges_are_their_comparisons(low: Version, v: Version) -> None:
    base = f"{low.major}.{low.minor}.{low.patch}"
    include = bool(v.pre)  # compare like with like: ranges decide on pre-releases only when included
    # With pre-releases included, an upper bound excludes the pre-releases of that bound too
    # (1.1.0-0 is below 1.1.0 but not in ~1.0.0): its comparison is `<1.1.0-0`.
    bound = "-0" if include else ""
    upper_caret = (
        f"{low.major + 1}.0.0"
        if low.major
        else (f"0.{low.minor + 1}.0" if low.minor else f"0.0.{low.patch + 1}")
    )
    pairs = [
        (f"^{base}", f">={base}, <{upper_caret}{bound}"),
        (f"~{base}", f">={base}, <{low.major}.{low.minor + 1}.0{bound}"),
        (f"{base} - 3.3.3", f">={base} <=3.3.3"),
        (f"{low.major}.{low.minor}.x", f">={low.major}.{low.minor}.0 <{low.major}.{low.minor + 1}.0{bound}"),
    ]
    if base == "0.0.0":
        pairs.pop(1)  # ~0.0.0 is Masterminds' special case: >=0.0.0
    for ranged, compared in pairs:
        a = Constraints.parse(ranged).check(v, include_prerelease=include)
        b = Constraints.parse(compared).check(v, include_prerelease=include)
        assert a == b, (ranged, compared, str(v))


@given(versions, st.sampled_from(["*", ">=0.0.0", "^1", "~2.1", "1.x || 3.x", ">1.0.0 <3"]))
def test_a_prerelease_matches_a_range_without_one_only_when_included(v: Version, text: str) -> None:
    if v.pre:
        assert not Constraints.parse(text).check(v)
