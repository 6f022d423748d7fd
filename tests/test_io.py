"""Atomic writes leave either the new file or the old one, never half of one; SHA-256 digests."""

import hashlib
import os

import pandas as pd
import pytest

from kobe_mlops.io import atomic_path, sha256_of, write_parquet_atomic


def leftovers(folder) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".tmp"))


def test_a_successful_block_moves_the_file_into_place_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "nested" / "out.txt"  # the folder does not exist yet
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_text("new")
        assert not target.exists()  # nobody sees the file before the block ends
    assert target.read_text() == "new"
    assert leftovers(target.parent) == []


@pytest.mark.parametrize("old", ["old", None], ids=["over-a-file", "where-there-was-none"])
def test_a_failing_block_leaves_the_old_state_and_no_temporary(tmp_path, old):
    target = tmp_path / "out.txt"
    if old is not None:
        target.write_text(old)
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_path(target) as tmp:
            tmp.write_text("half of the n")
            raise RuntimeError("interrupted")
    assert sorted(path.name for path in tmp_path.iterdir()) == ([] if old is None else ["out.txt"])
    assert old is None or target.read_text() == old


@pytest.mark.parametrize("private, mode", [(False, 0o644), (True, 0o600)])
def test_the_new_file_gets_the_usual_mode_unless_private(tmp_path, private, mode):
    previous = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "out.txt", private=private) as tmp:
            tmp.write_text("x")
    finally:
        os.umask(previous)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == mode


def test_parquet_is_written_atomically_and_reads_back(tmp_path):
    frame = pd.DataFrame({"shot_id": [1, 2], "lat": [33.9, 34.0]})
    target = tmp_path / "data" / "frame.parquet"
    assert write_parquet_atomic(frame, target) == target
    pd.testing.assert_frame_equal(pd.read_parquet(target), frame)
    assert leftovers(target.parent) == []


def test_sha256_of_a_known_text_a_large_file_and_an_empty_file(tmp_path):
    (tmp_path / "abc").write_bytes(b"abc")
    (tmp_path / "empty").write_bytes(b"")
    content = bytes(range(256)) * 41 * 1024  # 10 MiB and a bit: many read chunks, the last one partial
    (tmp_path / "blob.bin").write_bytes(content)
    assert sha256_of(tmp_path / "abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_of(tmp_path / "empty") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert sha256_of(tmp_path / "blob.bin") == hashlib.sha256(content).hexdigest()
