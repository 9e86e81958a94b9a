"""Folder checks: ``check_folder`` refuses exactly what ``make_folder`` would, with the same line, and makes nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lrsearch.errors import ConfigError
from lrsearch.folders import check_folder, make_folder


def _cases(tmp: Path) -> dict[str, Path]:
    (tmp / "file").write_text("")
    locked = tmp / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    (tmp / "dangling").symlink_to(tmp / "nowhere")
    return {"is_a_file": tmp / "file", "under_a_file": tmp / "file" / "sub" / "deeper",
            "in_a_read_only_folder": locked / "new", "fine": tmp / "new" / "deeper", "exists": tmp,
            "a_dangling_link": tmp / "dangling", "under_a_dangling_link": tmp / "dangling" / "sub"}


@pytest.mark.parametrize("case", ["is_a_file", "under_a_file", "in_a_read_only_folder", "fine", "exists",
                                  "a_dangling_link", "under_a_dangling_link"])
def test_check_folder_agrees_with_make_folder_and_creates_nothing(case: str, tmp_path: Path) -> None:
    if case == "in_a_read_only_folder" and os.geteuid() == 0:
        pytest.skip("root may write anywhere")
    path = _cases(tmp_path)[case]
    before = sorted(tmp_path.rglob("*"))
    try:
        check_folder(path, "--out folder")
        checked = None
    except ConfigError as exc:
        checked = str(exc)
    assert sorted(tmp_path.rglob("*")) == before  # nothing made
    try:
        made = make_folder(path, "--out folder")
        assert made.is_dir()
        built = None
    except ConfigError as exc:
        built = str(exc)
    assert checked == built
    assert (checked is None) == (case in ("fine", "exists"))
    if checked is not None:
        assert checked.startswith(f"--out folder {str(path)!r}") and "\n" not in checked
