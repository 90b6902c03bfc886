"""A chart's .helmignore is read as helm reads it (deployer/helmignore.py): the rules one by one,
then the whole chart against what real helm packages, and a file in crds/ that .helmignore leaves
out is not a CRD."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest

from deployer.charts import chart_contents
from deployer.helmignore import BadPattern, chart_files, ignored, parse, parse_rule


@pytest.mark.parametrize(
    ("rule", "path", "is_dir", "expected"),
    [
        # a pattern without `/`: the base name, at any depth
        ("notes.md", "notes.md", False, True),
        ("*.md", "docs/deep/guide.md", False, True),
        ("guide.*", "guide.md", False, True),
        ("guide.*", "readme.md", False, False),
        ("a?c.txt", "abc.txt", False, True),
        ("a?c.txt", "ac.txt", False, False),
        ("v[0-3].yaml", "v2.yaml", False, True),
        ("v[0-3].yaml", "v7.yaml", False, False),
        ("v[^0-3].yaml", "v7.yaml", False, True),
        ("v[^0-3].yaml", "v2.yaml", False, False),
        ("v[3-0].yaml", "v2.yaml", False, False),  # a reversed range matches nothing, as in Go
        (r"\*.txt", "*.txt", False, True),
        (r"\*.txt", "a.txt", False, False),
        # a `/` inside: the whole path, `*` never crossing a `/`
        ("crds/kustomization.yaml", "crds/kustomization.yaml", False, True),
        ("crds/*.yaml", "crds/a.yaml", False, True),
        ("crds/*.yaml", "crds/sub/a.yaml", False, False),
        ("crds/*.yaml", "other/crds/a.yaml", False, False),
        ("*/tmp*", "docs/tmp1", False, True),
        ("*/tmp*", "tmp1", False, False),
        # a leading `/`: anchored at the chart's root
        ("/values.dev.yaml", "values.dev.yaml", False, True),
        ("/values.dev.yaml", "ci/values.dev.yaml", False, False),
        ("/ci/values.yaml", "ci/values.yaml", False, True),
        # a trailing `/`: directories only
        ("ci/", "ci", True, True),
        ("ci/", "ci", False, False),
        ("ci/", "other", True, False),
        # dot files: `.` itself and the root are never ignored
        (".*", ".git", True, True),
        (".*", ".", True, False),
        (".*", "", True, False),
        (".*", "values.yaml", False, False),
        # negation: a negated rule that does not match ignores, one that matches goes on
        ("!values.yaml", "values.yaml", False, False),
        ("!values.yaml", "Chart.yaml", False, True),
        ("!ci/", "ci", True, False),
        ("!ci/", "values.yaml", False, True),
    ],
)
def test_each_rule_matches_as_helm_matches_it(rule: str, path: str, is_dir: bool, expected: bool) -> None:
    assert ignored(parse(rule)[:1], path, is_dir) is expected


def test_blank_lines_comments_and_surrounding_blanks_are_not_rules() -> None:
    patterns = parse("# a comment\n\n   \n  *.md  \n\t# indented comment\nci/\n")
    assert [p.raw for p in patterns] == ["*.md", "ci/", "templates/.?*"]  # helm's default comes last


@pytest.mark.parametrize("rule", ["docs/**/x", "[z-", "v[", "a\\"])
def test_rules_helm_refuses_are_bad_patterns(rule: str) -> None:
    with pytest.raises(BadPattern):
        parse_rule(rule)
    assert [p.raw for p in parse(f"{rule}\n*.md")] == ["*.md", "templates/.?*"]


def test_rules_apply_in_order_and_the_first_match_decides() -> None:
    patterns = parse("*.yaml\n!values.yaml\n")
    assert ignored(patterns, "values.yaml", False)  # *.yaml matched first
    assert ignored(patterns, "Chart.md", False)  # the negated rule does not match it: ignored
    assert not ignored(parse("!*.yaml\n"), "values.yaml", False)


def test_dot_files_in_templates_are_always_ignored() -> None:
    assert ignored(parse(""), "templates/.configmap.yaml.swp", False)
    assert not ignored(parse(""), "templates/configmap.yaml", False)


IGNORE = """\
# as charts write them
.git/
*.md
*.tmp
/ci/
crds/kustomization.yaml
docs/*.txt
v[0-1].yaml
"""

FILES = [
    "Chart.yaml",
    "values.yaml",
    "README.md",
    "ci/values.yaml",
    "crds/kustomization.yaml",
    "crds/widgets.yaml",
    "docs/a.txt",
    "docs/deep/b.txt",
    "templates/configmap.yaml",
    "templates/.hidden.yaml",
    "templates/scratch.tmp",
    "sub/ci/values.yaml",
    "v0.yaml",
    "v5.yaml",
]


def chart(root: Path, ignore: str) -> Path:
    for name in FILES:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "apiVersion: v2\nname: shaped\nversion: 0.1.0\n" if name == "Chart.yaml" else "x: 1\n"
        )
    (root / ".helmignore").write_text(ignore)
    return root


@pytest.mark.helm
# "!*.yaml": every file and directory that is not *.yaml is left out (templates/ included), as helm
# applies negation
@pytest.mark.parametrize("ignore", [IGNORE, "", "*.tmp\n!*.yaml\n"], ids=["rules", "none", "negation"])
def test_the_files_read_are_those_real_helm_loads(tmp_path: Path, helm: Path, ignore: str) -> None:
    # `helm package` loads the directory as every helm command does (.helmignore honoured) and
    # writes what it loaded: the same list is what deployer reads.
    src = chart(tmp_path / "shaped", ignore)
    subprocess.run(
        [str(helm), "package", str(src), "--destination", str(tmp_path)], check=True, capture_output=True
    )
    with tarfile.open(tmp_path / "shaped-0.1.0.tgz") as tar:
        packaged = sorted(m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile())
    ours = sorted(p.relative_to(src).as_posix() for p in chart_files(src))
    assert ours == packaged


def test_a_crds_file_that_helmignore_leaves_out_is_not_a_crd(tmp_path: Path) -> None:
    src = chart(tmp_path / "shaped", "crds/kustomization.yaml\n")
    assert list(chart_contents(src).crds) == ["crds/widgets.yaml"]
    (src / ".helmignore").unlink()
    assert list(chart_contents(src).crds) == ["crds/kustomization.yaml", "crds/widgets.yaml"]
