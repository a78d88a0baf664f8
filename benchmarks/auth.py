"""Authentication cost per request: a cached token check (the hot path: every request within 5 s
of the token's last lookup) and a lookup in the database (a cache miss), on SQLite, next to a
baseline measured in the same run (hashing the token, which both paths do).

    .venv/bin/python benchmarks/auth.py            # about 10 s

The cached check also compares the token's expiry with the clock; a lookup also writes the
token's ``last_used_at`` when it is more than a minute old (here: once, at the start).
"""

from __future__ import annotations

import argparse
import tempfile
import timeit
from pathlib import Path

from watchkeeper.service import Role, Watchkeeper, hash_token
from watchkeeper.settings import Settings


def per_call(fn: object, number: int, repeat: int = 5) -> float:
    """Best of ``repeat`` runs, in microseconds per call (the machine is shared)."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=100_000, help="cached checks per run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wk = Watchkeeper(Settings(database_url=f"sqlite:///{Path(tmp) / 'wk.db'}"), metrics=False)
        wk.upgrade()
        header = f"Bearer {wk.create_token(Role.INGEST, 'bench', 'bench')}"
        wk.authenticate(header)
        baseline = per_call(lambda: hash_token(header[7:]), args.calls)
        cached = per_call(lambda: wk.cached_principal(header), args.calls)

        def miss() -> None:
            wk._tokens.clear()
            wk.authenticate(header)

        lookup = per_call(miss, max(1, args.calls // 100))
        wk.close()
    print(f"{'baseline: sha256 of the token':42} {baseline:8.2f} us/call")
    print(f"{'cached check (expiry against the clock)':42} {cached:8.2f} us/call  ({cached / baseline:.1f}x baseline)")
    print(f"{'database lookup (cache miss), SQLite':42} {lookup:8.1f} us/call  ({lookup / baseline:.0f}x baseline)")


if __name__ == "__main__":
    main()
