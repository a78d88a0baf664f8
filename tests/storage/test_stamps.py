"""The SQLite time text of the logs' raw rows: made a second at a time, the same as sqlite_stamp."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

from watchkeeper.storage.types import SecondStamps, sqlite_stamp


def test_second_stamps_give_sqlite_stamps_text_for_any_time_order_and_zone() -> None:
    rng = random.Random(5)
    start = datetime(2026, 12, 3, 23, 59, 58, tzinfo=UTC)
    times = [start + timedelta(microseconds=rng.randrange(4_000_000)) for _ in range(2000)]  # over midnight
    times += [*sorted(times[:200]), start.replace(microsecond=0), datetime.max.replace(tzinfo=UTC)]
    times += [t.astimezone(timezone(timedelta(hours=-5))) for t in times[:50]]  # another zone: converted
    stamp = SecondStamps()
    assert [stamp(t) for t in times] == [sqlite_stamp(t) for t in times]
