"""Signed approval links: round trip, tampering, expiry, hostile tokens."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchkeeper.approval_links import LinkClaim, new_nonce, sign, verify
from watchkeeper.errors import ConfigError, InputError

SECRET = b"0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
LATER = NOW + timedelta(hours=4)


def test_round_trip_gives_the_claim() -> None:
    nonce = new_nonce()
    token = sign(SECRET, 7, "reject", LATER, nonce)
    assert verify(SECRET, token, NOW) == LinkClaim(7, "reject", LATER, nonce)


def test_token_is_url_safe() -> None:
    token = sign(SECRET, 2**31 - 1, "approve", LATER, "a" * 64)
    assert all(c.isalnum() or c in "-_." for c in token)
    assert len(token) <= 256


def test_expiry_is_kept_to_the_second_rounded_down() -> None:
    token = sign(SECRET, 1, "approve", LATER + timedelta(milliseconds=900), "n")
    assert verify(SECRET, token, NOW).expires_at == LATER


@pytest.mark.parametrize("now", [LATER, LATER + timedelta(seconds=1), LATER + timedelta(days=400)])
def test_expired_link_is_refused_with_a_sentence(now: datetime) -> None:
    token = sign(SECRET, 1, "approve", LATER, "n")
    with pytest.raises(InputError, match="expired at 2026-12-03 13:30:00Z") as caught:
        verify(SECRET, token, now)
    assert caught.value.status == 410


def test_other_secret_is_not_genuine() -> None:
    token = sign(SECRET, 1, "approve", LATER, "n")
    with pytest.raises(InputError, match="not genuine") as caught:
        verify(b"another secret of 32 bytes......", token, NOW)
    assert caught.value.status == 403


def test_changing_the_decision_breaks_the_signature() -> None:
    token = sign(SECRET, 1, "reject", LATER, "n")
    payload, mac = token.split(".")
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).replace(b":r:", b":a:")
    forged = base64.urlsafe_b64encode(raw).rstrip(b"=").decode() + "." + mac
    with pytest.raises(InputError, match="not genuine"):
        verify(SECRET, forged, NOW)


@pytest.mark.parametrize("token", [
    "", ".", "abc", "a.b.c", "x" * 300, "!!!.???", "YWJj.", ".YWJj", "YWJj.YWJj\n", "é.é", "\x00.\x00",
])
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InputError, match=r"malformed|not genuine"):
        verify(SECRET, token, NOW)


@given(st.text(max_size=300))
def test_any_text_is_an_input_error_never_a_crash(token: str) -> None:
    with pytest.raises(InputError):
        verify(SECRET, token, NOW)


@pytest.mark.parametrize(("approval_id", "decision", "expires", "nonce", "message"), [
    (0, "approve", LATER, "n", "approval id"),
    (2**31, "approve", LATER, "n", "approval id"),
    (True, "approve", LATER, "n", "approval id"),
    (1, "APPROVE", LATER, "n", "decision"),
    (1, "approve", LATER.replace(tzinfo=None), "n", "time zone"),
    (1, "approve", LATER, "", "nonce"),
    (1, "approve", LATER, "a:b", "nonce"),
    (1, "approve", LATER, "x" * 65, "nonce"),
])
def test_sign_refuses_bad_arguments(approval_id: int, decision: str, expires: datetime, nonce: str,
                                    message: str) -> None:
    with pytest.raises(InputError, match=message):
        sign(SECRET, approval_id, decision, expires, nonce)


def test_short_secret_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        sign(b"short", 1, "approve", LATER, "n")
    with pytest.raises(ConfigError):
        verify(b"", "a.b", NOW)


def test_nonces_differ() -> None:
    assert len({new_nonce() for _ in range(100)}) == 100
