"""Atomic writes: all or nothing, usual permissions, no temporary files left behind."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from llm4sbr_adapter.atomic_files import atomic_open, atomic_path, atomic_write_text, current_umask


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as handle:
            handle.write("half of the new")
            raise RuntimeError("crash in the middle")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_new_file_gets_umask_permissions_not_mkstemp_0600(tmp_path):
    old = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        atomic_write_text(tmp_path / "sub" / "a.txt", "x\n")  # the folder is created
        mode = stat.S_IMODE((tmp_path / "sub" / "a.txt").stat().st_mode)
    finally:
        os.umask(old)
    assert mode == 0o640
    assert (tmp_path / "sub" / "a.txt").read_bytes() == b"x\n"


def test_atomic_path_suffix_for_writers_that_add_an_extension(tmp_path):
    with atomic_path(tmp_path / "ranks.npz", suffix=".npz") as tmp:
        assert tmp.suffix == ".npz" and tmp.parent == tmp_path
        np.savez_compressed(tmp, a=np.arange(3))
    assert np.load(tmp_path / "ranks.npz")["a"].tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ranks.npz"]


def test_atomic_open_rejects_append_and_read_modes(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(tmp_path / "x", "a"):
            pass
