"""Untimed and compact tokens: never expire, survive rotation, stay purpose-bound, carry only ids."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from flexmail.domain.tokens import Purpose, Signer, TokenError


def _future(days):
    return lambda: dt.datetime.now(dt.UTC) + dt.timedelta(days=days)


def test_untimed_token_never_expires_and_holds_only_ids():
    """An untimed token made today still loads decades later, and its payload is the ids only."""
    token = Signer(("k1",)).dumps_untimed(Purpose.UNSUBSCRIBE, [12, 34])
    assert Signer(("k1",), now=_future(365 * 30)).loads_untimed(Purpose.UNSUBSCRIBE, token) == [12, 34]
    payload = token.split(".")[0]
    assert base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)) == b"[12,34]"
    assert len(token) < 50


def test_untimed_token_verifies_while_its_key_is_listed():
    """Rotation: a token of the old key loads while the key is listed, and fails once it is dropped."""
    token = Signer(("old",)).dumps_untimed(Purpose.UNSUBSCRIBE, [5])
    assert Signer(("new", "old")).loads_untimed(Purpose.UNSUBSCRIBE, token) == [5]
    with pytest.raises(TokenError):
        Signer(("new",)).loads_untimed(Purpose.UNSUBSCRIBE, token)


def test_untimed_tokens_are_purpose_bound_and_apart_from_timed_ones():
    """An untimed token of another purpose, or a timed token of the same purpose, is refused."""
    signer = Signer(("k1",))
    with pytest.raises(TokenError):
        signer.loads_untimed(Purpose.UNSUBSCRIBE, signer.dumps_untimed(Purpose.FORWARD, [1]))
    with pytest.raises(TokenError):
        signer.loads_untimed(Purpose.UNSUBSCRIBE, signer.dumps(Purpose.UNSUBSCRIBE, [1]))
    with pytest.raises(TokenError):
        signer.loads(Purpose.UNSUBSCRIBE, signer.dumps_untimed(Purpose.UNSUBSCRIBE, [1]))


def test_tokens_refuse_anything_but_non_negative_int_ids():
    """Addresses, strings, booleans and negative numbers cannot be put into a token."""
    signer = Signer(("k1",))
    for ids in (["reader@example.com"], [True], [-1], "1"):
        with pytest.raises(TypeError):
            signer.dumps_untimed(Purpose.UNSUBSCRIBE, ids)
        with pytest.raises(TypeError):
            signer.dumps_compact(Purpose.UNSUBSCRIBE, ids)


@pytest.mark.parametrize("ids", [[0], [1], [127], [128], [123456789], [2**63 - 1], [7, 2**40], [2**63 - 1] * 2])
def test_compact_token_round_trips_in_any_letter_case(ids):
    """A compact token is lower-case base32 and decodes to its ids whatever case a relay gives it."""
    signer = Signer(("k1",))
    token = signer.dumps_compact(Purpose.UNSUBSCRIBE, ids)
    assert token == token.lower() and set(token) <= set("abcdefghijklmnopqrstuvwxyz234567")
    assert len("unsub-" + token) <= 64  # RFC 5321 local-part limit
    for variant in (token, token.upper(), token.swapcase()):
        assert signer.loads_compact(Purpose.UNSUBSCRIBE, variant) == ids


def test_compact_token_rotation_and_purpose():
    """Compact tokens verify with any listed key, and only for their own purpose."""
    token = Signer(("old",)).dumps_compact(Purpose.UNSUBSCRIBE, [9])
    assert Signer(("new", "old")).loads_compact(Purpose.UNSUBSCRIBE, token) == [9]
    for signer, purpose in ((Signer(("new",)), Purpose.UNSUBSCRIBE), (Signer(("old",)), Purpose.FORWARD)):
        with pytest.raises(TokenError):
            signer.loads_compact(purpose, token)


def test_compact_token_tampering_is_refused():
    """Every single-character change (to any base32 letter, also in the last character's unused bits),
    truncation or extension of a compact token is refused."""
    signer = Signer(("k1",))
    token = signer.dumps_compact(Purpose.UNSUBSCRIBE, [4242])
    variants = {token[:-1], token + "a", token[1:], "", "a" * 60, token.replace(token[0], "1"), "é" * 10}
    for index in range(len(token)):
        for replacement in "abcdefghijklmnopqrstuvwxyz234567":
            variants.add(token[:index] + replacement + token[index + 1:])
    variants.discard(token)
    for variant in variants:
        with pytest.raises(TokenError):
            signer.loads_compact(Purpose.UNSUBSCRIBE, variant)


def test_compact_token_refuses_too_many_ids():
    """At most two ids (subscription, campaign) fit the local-part budget."""
    with pytest.raises(ValueError):
        Signer(("k1",)).dumps_compact(Purpose.UNSUBSCRIBE, [1, 2, 3])
    with pytest.raises(ValueError):
        Signer(("k1",)).dumps_compact(Purpose.UNSUBSCRIBE, [2**63])
