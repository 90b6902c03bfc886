"""deployer.paths.resolved is Path.resolve() (with directories resolved once): the same path for
relative and absolute paths, `..`, symlinked files and directories, and paths that do not exist."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deployer.paths import resolved


def test_resolved_is_path_resolve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = tmp_path / "real"
    (real / "sub").mkdir(parents=True)
    (real / "sub" / "values.yaml").write_text("a: 1\n")
    (tmp_path / "linkdir").symlink_to(real)
    (real / "sub" / "link.yaml").symlink_to(real / "sub" / "values.yaml")
    (real / "dangling.yaml").symlink_to(tmp_path / "nowhere.yaml")
    monkeypatch.chdir(real)
    cases = [
        Path("sub/values.yaml"),
        Path("sub/../sub/values.yaml"),
        Path("sub/link.yaml"),
        Path("dangling.yaml"),
        Path("missing/dir/file.yaml"),
        Path("."),
        Path(".."),
        Path("sub/.."),
        tmp_path / "linkdir" / "sub" / "values.yaml",
        tmp_path / "linkdir" / ".." / "real" / "sub" / "link.yaml",
        Path(os.sep),
    ]
    for case in cases:
        assert resolved(case) == case.resolve(), case
