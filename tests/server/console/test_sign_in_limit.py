"""The sign-in rate limit: failures per user name and per client address lock them out with a 429,
a ``Retry-After`` and a sentence, before any password is checked; the lock ends with the window;
failures and lock-outs are audited; hostile names and addresses cannot grow its memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from conftest import Clock
from fixtures.console import PASSWORD, add_users, csrf_of, runbooks_dir
from watchkeeper.server import create_app
from watchkeeper.server.console.throttle import SignInLimiter, address_key, name_key
from watchkeeper.service import Watchkeeper
from watchkeeper.storage import audit

WRONG = "not the password at all"


@pytest.fixture
def wk(make_service: Callable[..., Watchkeeper], sqlite_url: str, tmp_path: Path) -> Watchkeeper:
    made = make_service(sqlite_url, runbooks_dir=runbooks_dir(tmp_path),
                        console={"secure_cookies": False, "sign_in_failures": 5, "sign_in_address_failures": 8,
                                 "sign_in_window_minutes": 15})
    add_users(made)
    return made


@pytest.fixture
def app(wk: Watchkeeper) -> FastAPI:
    return create_app(wk, upgrade=False, responder=False, watch=False, rank=False)


@pytest.fixture
def client_from(app: FastAPI) -> Iterator[Callable[[str], TestClient]]:
    """A browser-like client from a given address, all on one app (one limiter, as in one server)."""
    opened: list[TestClient] = []

    def open_from(address: str) -> TestClient:
        c = TestClient(app, headers={"Accept": "text/html"}, client=(address, 40000))
        c.__enter__()
        opened.append(c)
        return c

    yield open_from
    for c in opened:
        c.__exit__(None, None, None)


def sign_in(client: TestClient, name: str, password: str) -> Any:
    token = csrf_of(client.get("/console/login").text)
    return client.post("/console/login", data={"csrf": token, "username": name, "password": password},
                       follow_redirects=False)


def kinds(wk: Watchkeeper, subject: str) -> list[str]:
    with wk.db.read() as conn:
        return [r.kind for r in audit.records(conn, subject=subject)]


def test_five_wrong_passwords_lock_the_name_even_for_the_right_one(
        wk: Watchkeeper, client_from: Callable[[str], TestClient], clock: Clock) -> None:
    c = client_from("192.0.2.10")
    for _ in range(5):
        assert sign_in(c, "operator", WRONG).status_code == 401
    locked = sign_in(c, "operator", PASSWORD)
    assert locked.status_code == 429
    assert locked.headers["retry-after"] == str(15 * 60)
    assert "too many failed sign-ins" in locked.text and "try again in 15 minutes" in locked.text
    assert "wk_session" not in locked.headers.get("set-cookie", "")
    # from another address too: the name is what is locked (guessing one account from many places)
    assert sign_in(client_from("198.51.100.3"), "operator", PASSWORD).status_code == 429
    # another name from the first address still signs in (the address is below its own limit)
    assert sign_in(c, "viewer", PASSWORD).status_code == 303
    # the lock slides with the window: the oldest failure leaves it after 15 minutes
    clock.advance(seconds=10 * 60)
    later = sign_in(c, "operator", PASSWORD)
    assert later.status_code == 429 and int(later.headers["retry-after"]) == 5 * 60
    clock.advance(seconds=5 * 60 + 1)
    assert sign_in(c, "operator", PASSWORD).status_code == 303


def test_failures_and_the_lock_out_are_audited(wk: Watchkeeper, client_from: Callable[[str], TestClient]) -> None:
    c = client_from("192.0.2.11")
    for _ in range(6):
        sign_in(c, "approver", WRONG)
    found = kinds(wk, "user:approver")
    # five failures counted, the lock-out once; the refused sixth is not a new failure (no audit flood)
    assert found.count("user.sign_in_failed") == 5 and found.count("user.locked_out") == 1
    with wk.db.read() as conn:
        [locked] = [r for r in audit.records(conn, subject="user:approver") if r.kind == "user.locked_out"]
    assert locked.actor == "console" and locked.payload["address"] == "192.0.2.11"
    assert locked.payload["locked"] == ["user"] and locked.payload["reason"] == "refused"


def test_a_right_password_starts_the_name_s_count_again(client_from: Callable[[str], TestClient]) -> None:
    c = client_from("192.0.2.12")
    for _ in range(4):
        sign_in(c, "admin", WRONG)
    assert sign_in(c, "admin", PASSWORD).status_code == 303
    c.cookies.clear()
    for _ in range(4):
        assert sign_in(c, "admin", WRONG).status_code == 401  # four again, not eight


def test_one_address_trying_many_names_is_locked(client_from: Callable[[str], TestClient]) -> None:
    c = client_from("203.0.113.5")
    names = ["viewer", "operator", "approver", "admin"]
    for n in range(8):  # two per name: no name reaches its limit of 5, the address reaches its 8
        assert sign_in(c, names[n % 4], WRONG).status_code == 401
    refused = sign_in(c, "approver2", PASSWORD)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) == 15 * 60
    # everyone else is unaffected
    assert sign_in(client_from("203.0.113.6"), "approver2", PASSWORD).status_code == 303


def test_ipv6_neighbours_in_one_64_count_together(client_from: Callable[[str], TestClient]) -> None:
    for n in range(8):
        sign_in(client_from(f"2001:db8:1:2::{n + 1:x}"), ["viewer", "operator"][n % 2], WRONG)
    assert sign_in(client_from("2001:db8:1:2::ffff"), "admin", PASSWORD).status_code == 429
    assert sign_in(client_from("2001:db8:1:3::1"), "admin", PASSWORD).status_code == 303


def test_a_script_gets_the_api_s_error_shape(client_from: Callable[[str], TestClient]) -> None:
    c = client_from("192.0.2.13")
    for _ in range(5):
        sign_in(c, "viewer", WRONG)
    token = csrf_of(c.get("/console/login").text)
    got = c.post("/console/login", data={"csrf": token, "username": "viewer", "password": PASSWORD},
                 headers={"Accept": "application/json"}, follow_redirects=False)
    assert got.status_code == 429 and got.headers["retry-after"] == "900"
    body = got.json()
    assert body["status"] == 429 and "too many failed sign-ins" in body["error"]


def test_hostile_names_count_against_the_address_and_are_audited_safely(
        wk: Watchkeeper, client_from: Callable[[str], TestClient]) -> None:
    c = client_from("192.0.2.14")
    hostile = ["<script>alert(1)</script>", "' OR 1=1 --", "ä" * 128, "x\u0000y", " "]
    for name in hostile:
        got = sign_in(c, name, WRONG)
        assert got.status_code == 401 and "<script>alert(1)" not in got.text
    assert "user.sign_in_failed" in kinds(wk, "console:sign-in")
    for _ in range(3):
        sign_in(c, "nobody-at-all", WRONG)
    got = sign_in(c, "viewer", PASSWORD)
    assert got.status_code == 429  # 8 failures from this address, whatever the names were
    assert wk.verify_audit().ok


# -- the limiter itself ------------------------------------------------------------------------------
def test_the_limiter_s_memory_is_bounded() -> None:
    limiter = SignInLimiter(5, 20, 900.0, max_keys=100)
    for n in range(1000):
        limiter.fail([name_key(f"guess{n}")], float(n))
    assert len(limiter) == 100
    assert limiter.retry_after([name_key("guess999")], 1000.0) == 0  # one failure: not locked


def test_the_limiter_forgets_what_left_the_window() -> None:
    limiter = SignInLimiter(2, 20, 60.0)
    key = name_key("Dana")
    assert limiter.fail([key], 0.0).locked == ()
    assert limiter.fail([key], 10.0).locked == (key,)
    assert limiter.retry_after([name_key("dana")], 20.0) == 40  # names are counted case-blind
    assert limiter.retry_after([key], 59.5) == 1  # rounded up: never "try again in 0 s"
    assert limiter.retry_after([key], 60.0) == 0  # the failure at 0 left the window: one is left, below 2
    assert len(limiter) == 1
    assert limiter.retry_after([key], 70.0) == 0 and len(limiter) == 0  # all forgotten
    assert address_key(None) is None


def test_a_locked_out_attempt_hashes_nothing(wk: Watchkeeper) -> None:
    """The lock is checked before the password: a guesser that is locked out costs no argon2 time."""
    from argon2 import PasswordHasher

    from watchkeeper.errors import AuthError
    from watchkeeper.server.console.accounts import Accounts
    from watchkeeper.server.console.throttle import Throttled

    class Counting(PasswordHasher):
        verified = 0

        def verify(self, hash: str | bytes, password: str | bytes) -> bool:
            Counting.verified += 1
            return super().verify(hash, password)

    accounts = Accounts(wk.db, wk.clock, wk.settings.console, Counting(time_cost=1, memory_cost=1024, parallelism=1))
    for _ in range(5):
        with pytest.raises(AuthError):
            accounts.sign_in("viewer", WRONG, "192.0.2.20")
    assert Counting.verified == 5
    for _ in range(20):
        with pytest.raises(Throttled) as refused:
            accounts.sign_in("viewer", PASSWORD, "192.0.2.21")
        assert refused.value.status == 429 and refused.value.retry_after == 900
    assert Counting.verified == 5
