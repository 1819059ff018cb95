"""Atomic output: the written file carries the permissions the user's umask gives new files,
and a failed write leaves the old file and no temporary behind."""

from __future__ import annotations

import os
import stat

import pytest

from dsc.io import atomic_write_bytes, atomic_write_json


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX permissions")
@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, umask, expected):
    previous = os.umask(umask)
    try:
        path = atomic_write_json(tmp_path / "metrics.json", {"mse": 0.1})
        reference = tmp_path / "plain"
        reference.write_bytes(b"")  # what a plain open() gives under the same umask
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == expected == stat.S_IMODE(reference.stat().st_mode)


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = atomic_write_bytes(tmp_path / "out.bin", b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")  # fails inside the write
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
