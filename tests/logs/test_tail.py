"""The file follower: rotation by rename, truncation, restart from a stored offset (even across a
rotation), partial lines, oversized lines."""

from __future__ import annotations

import os
from pathlib import Path

from watchkeeper.logs.tail import Tailer


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(text)


def test_rename_rotation_reads_the_old_file_to_its_end_then_the_new(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(log, "a1\na2\n")
    t = Tailer(log, from_start=True)
    assert t.read().lines == ["a1", "a2"]
    append(log, "a3\n")  # written before the rotation, not read yet
    log.rename(tmp_path / "app.log.1")
    append(log, "b1\n")
    got = t.read()
    assert got.lines == ["a3", "b1"] and got.rotated
    append(log, "b2\n")
    assert t.read().lines == ["b2"]
    t.close()


def test_truncation_starts_again_from_the_top(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(log, "one\ntwo\n")
    t = Tailer(log, from_start=True)
    t.read()
    log.write_text("x\n")  # copytruncate
    got = t.read()
    assert got.lines == ["x"] and got.truncated
    t.close()


def test_restart_resumes_at_the_stored_offset_without_loss_or_double(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(log, "1\n2\n")
    t = Tailer(log, from_start=True)
    first = t.read()
    t.close()
    append(log, "3\n")
    t = Tailer(log, first.offset)
    assert t.read().lines == ["3"]
    t.close()


def test_restart_after_a_rotation_reads_the_rest_of_the_rotated_file_first(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(log, "1\n2\n")
    t = Tailer(log, from_start=True)
    stored = t.read().offset
    t.close()
    append(log, "3\n")  # written while we were down, then rotated
    os.rename(log, tmp_path / "app.log.1")
    append(log, "4\n")
    t = Tailer(log, stored)
    assert t.read().lines == ["3", "4"]
    t.close()


def test_a_new_file_is_followed_from_its_end_unless_asked(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(log, "old\n")
    t = Tailer(log)
    assert t.read().lines == []
    append(log, "new\n")
    assert t.read().lines == ["new"]
    t.close()


def test_a_missing_file_is_waited_for(tmp_path: Path) -> None:
    log = tmp_path / "later.log"
    t = Tailer(log, from_start=True)
    assert t.read().offset is None
    append(log, "here\n")
    assert t.read().lines == ["here"]
    t.close()


def test_oversized_lines_are_skipped_and_reported(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(log, "ok\n" + "x" * 1000 + "\nfine\n")
    t = Tailer(log, from_start=True, max_line=256)
    got = t.read()
    assert got.lines == ["ok", "fine"] and len(got.oversized) == 1
    t.close()


def test_invalid_utf8_is_replaced_not_fatal(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"caf\xe9\n")
    t = Tailer(log, from_start=True)
    assert t.read().lines == ["caf\ufffd"]
    t.close()
