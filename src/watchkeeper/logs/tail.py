"""Follow a file as ``tail -F`` does, losing and doubling nothing across restarts: the position is
an :class:`Offset` (inode + byte offset after the last whole line) that the caller stores in the
same transaction as the lines it read, and hands back at start-up.

- Rename rotation (logrotate's default): the old file is read to its end before the new one.
- A restart after a rotation: the old file is found in the same folder by its inode, read from
  the stored offset to its end, then the new file from its start.
- Truncation (copytruncate): the file shrank below the offset, so it is read from its start.

>>> import tempfile
>>> p = Path(tempfile.mkdtemp()) / "app.log"
>>> _ = p.write_text("one\\ntwo\\npart")
>>> t = Tailer(p, from_start=True)
>>> [line for line in t.read().lines]
['one', 'two']
>>> with p.open("a") as f: _ = f.write("ial\\n")
>>> r = t.read(); r.lines, r.offset.offset
(['partial'], 16)
>>> t.close()
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

#: Bytes read per call at most (a large backlog is read over several calls).
CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Offset:
    """Where a file's reader stands: the file's inode (and device) and the byte after the last
    line handed on."""

    inode: int
    offset: int
    device: int = 0


@dataclass(slots=True)
class Read:
    lines: list[str] = field(default_factory=list)
    #: The position after these lines (None: nothing to read and no file yet).
    offset: Offset | None = None
    #: Lines longer than the limit, skipped (their first bytes, for the dead letters).
    oversized: list[bytes] = field(default_factory=list)
    rotated: bool = False
    truncated: bool = False


class Tailer:
    """Reads the whole lines appended to ``path`` since the last :meth:`read`."""

    def __init__(self, path: str | os.PathLike[str], start: Offset | None = None, *, from_start: bool = False,
                 max_line: int = 65_536) -> None:
        self.path = Path(path)
        self.max_line = max_line
        self._file: BinaryIO | None = None
        self._inode = 0
        self._device = 0
        self._offset = 0
        self._skipping = False
        self._start = start
        self._from_start = from_start
        #: A rotated file still to be read to its end (inode matched at start-up), then closed.
        self._old: tuple[BinaryIO, int, int] | None = None

    def close(self) -> None:
        for f in (self._file, self._old[0] if self._old else None):
            if f is not None:
                f.close()
        self._file, self._old = None, None

    @property
    def offset(self) -> Offset | None:
        return Offset(self._inode, self._offset, self._device) if self._file is not None else None

    def _open(self) -> bool:
        try:
            f = self.path.open("rb")
        except OSError:
            return False
        st = os.fstat(f.fileno())
        start = self._start
        self._start = None
        if start is not None and (st.st_ino, st.st_dev) != (start.inode, start.device or st.st_dev):
            old = self._find_rotated(start)
            if old is not None:
                self._old = old
            offset = 0  # the file at the path is the new one: all of it is unread
        elif start is not None:
            offset = start.offset if start.offset <= st.st_size else 0
        elif self._inode:  # rotated while we ran
            offset = 0
        else:
            offset = 0 if self._from_start else st.st_size
        self._file, self._inode, self._device, self._offset = f, st.st_ino, st.st_dev, offset
        f.seek(offset)
        return True

    def _find_rotated(self, start: Offset) -> tuple[BinaryIO, int, int] | None:
        """The file in the path's folder with ``start``'s inode (``app.log.1`` …), at its offset."""
        found = None
        with contextlib.suppress(OSError), os.scandir(self.path.parent) as entries:
            for entry in entries:
                if entry.name.startswith(self.path.name) and entry.inode() == start.inode:
                    found = entry.path
                    break
        if found is None:
            return None
        try:
            f = open(found, "rb")  # noqa: SIM115 - kept open until read to its end
        except OSError:
            return None
        f.seek(min(start.offset, os.fstat(f.fileno()).st_size))
        return f, start.inode, f.tell()

    def read(self) -> Read:
        """The new whole lines (decoded as UTF-8, bad bytes replaced) and the offset after them."""
        out = Read()
        opened = self._file is not None or self._open()
        if self._old is not None:  # a rotated file found at start-up: its rest first
            f = self._old[0]
            self._old = None
            lines, _end = self._lines(f, f.tell(), out, final=True)
            f.close()
            out.lines.extend(lines)
            out.rotated = True
        if not opened:
            return out
        assert self._file is not None
        try:
            st = os.stat(self.path)
            moved = (st.st_ino, st.st_dev) != (self._inode, self._device)
        except OSError:
            moved = False
        size = os.fstat(self._file.fileno()).st_size
        if size < self._offset:  # truncated in place
            self._offset, self._skipping = 0, False
            self._file.seek(0)
            out.truncated = True
        lines, self._offset = self._lines(self._file, self._offset, out, final=moved)
        out.lines.extend(lines)
        if moved and self._offset >= os.fstat(self._file.fileno()).st_size:  # the old file is read: on to the new
            self._file.close()
            self._file = None
            out.rotated = True
            if self._open():
                more = self.read()
                out.lines.extend(more.lines)
                out.oversized.extend(more.oversized)
                out.truncated = out.truncated or more.truncated
        out.offset = self.offset
        return out

    def _lines(self, f: BinaryIO, offset: int, out: Read, *, final: bool) -> tuple[list[str], int]:
        f.seek(offset)
        data = f.read(CHUNK)
        if not data:
            return [], offset
        end = data.rfind(b"\n")
        if end < 0:
            if len(data) > self.max_line:  # one endless line: skip what we have
                out.oversized.append(data[:256])
                self._skipping = True
                return [], offset + len(data)
            if final and data:  # a rotated file's last line without newline
                return [data.decode("utf-8", "replace")], offset + len(data)
            return [], offset
        whole = data[:end]
        lines: list[str] = []
        for raw in whole.split(b"\n"):
            if self._skipping:
                self._skipping = False
                continue
            if len(raw) > self.max_line:
                out.oversized.append(raw[:256])
                continue
            raw = raw.rstrip(b"\r")
            if raw:
                lines.append(raw.decode("utf-8", "replace"))
        return lines, offset + end + 1
