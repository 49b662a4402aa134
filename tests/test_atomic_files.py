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
    with pytest.raises(RuntimeError), atomic_open(target, "w") as handle:
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
    with pytest.raises(ValueError, match="mode"), atomic_open(tmp_path / "x", "a"):
        pass


def _age(path, seconds: float = 3600.0) -> None:
    old = path.stat().st_mtime - seconds
    os.utime(path, (old, old))


@pytest.mark.parametrize("suffix", [".tmp", ".npz"])
def test_stale_temp_files_of_the_target_are_removed_on_the_next_write(tmp_path, suffix):
    """A write killed midway (SIGKILL, power loss) leaves .<name>.XXXXXXXX<suffix>; the next write removes it."""
    stale = [tmp_path / f".ranks.npz.abc_1234{suffix}", tmp_path / f".ranks.npz.zzzzzzzz{suffix}"]
    others = [
        tmp_path / f".ranks.npz.abc_1234{suffix}.keep",  # longer name
        tmp_path / f".ranks.npz.abc123{suffix}",  # random part too short
        tmp_path / f".ranks.npz.ABC12345{suffix}",  # mkstemp never uses capitals
        tmp_path / f"ranks.npz.abc_1234{suffix}",  # no leading dot
        tmp_path / f".other.npz.abc_1234{suffix}",  # another target
        tmp_path / f".ranks.npz.old.abc_1234{suffix}",  # the temp file of target "ranks.npz.old"
        tmp_path / "ranks.npz.bak",
    ]
    for p in stale + others:
        p.write_bytes(b"half a file")
        _age(p)
    (tmp_path / f".ranks.npz.dir12345{suffix}").mkdir()  # not a file: left alone
    with atomic_path(tmp_path / "ranks.npz", suffix=suffix) as tmp:
        tmp.write_bytes(b"the whole file")
    assert (tmp_path / "ranks.npz").read_bytes() == b"the whole file"
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["ranks.npz", f".ranks.npz.dir12345{suffix}"] + [p.name for p in others])


def test_temp_file_of_a_live_writer_is_kept(tmp_path):
    """Two processes writing the same cache file: neither may delete the other's temp file mid-write."""
    target = tmp_path / "cache.bin"
    with atomic_open(target, "wb") as outer:
        outer.write(b"outer")
        live = [p for p in tmp_path.iterdir() if p.name.startswith(".cache.bin.")]
        assert len(live) == 1
        _age(live[0])  # old, but its writer still holds it
        atomic_write_text(target, "inner")
        assert live[0].exists()
        fresh = tmp_path / ".cache.bin.fresh123.tmp"  # a writer that has just created its file
        fresh.write_bytes(b"")
        atomic_write_text(target, "inner again")
        assert fresh.exists()
    assert target.read_bytes() == b"outer"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".cache.bin.fresh123.tmp", "cache.bin"]
