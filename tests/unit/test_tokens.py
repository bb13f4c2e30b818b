"""Signed tokens: purpose-bound, rotation-aware, ids only."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from flexmail.domain.tokens import Purpose, Signer, TokenError


def test_round_trip_carries_only_ids():
    """A token decodes to the integer ids it was made with, and refuses anything else in it."""
    signer = Signer(("k1",))
    token = signer.dumps(Purpose.CONFIRM, [12, 34])
    assert signer.loads(Purpose.CONFIRM, token) == [12, 34]
    with pytest.raises(TypeError):
        signer.dumps(Purpose.CONFIRM, ["reader@example.com"])


def test_payload_holds_no_address():
    """The readable payload of a token is ids; the address cannot be in it by construction."""
    token = Signer(("k1",)).dumps(Purpose.CONFIRM, [7, 8])
    payload = token.split(".")[0]
    assert base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)) == b"[7,8]"


@pytest.mark.parametrize("mutate", [
    # A middle character of the signature: the last one may only carry unused padding bits.
    lambda t: t[:-5] + ("A" if t[-5] != "A" else "B") + t[-4:],
    lambda t: "WzcsOV0" + t[t.index("."):],  # payload [7,9] with the signature of [7,8]
    lambda t: t + "x",
    lambda t: "",
    lambda t: "not-a-token",
    lambda t: t.replace(".", "", 1),
])
def test_tampered_tokens_are_invalid(mutate):
    """Any change to payload or signature is refused as invalid."""
    signer = Signer(("k1",))
    token = signer.dumps(Purpose.CONFIRM, [7, 8])
    with pytest.raises(TokenError) as exc:
        signer.loads(Purpose.CONFIRM, mutate(token))
    assert exc.value.kind == "invalid"


def test_wrong_purpose_is_invalid():
    """A token made for one page is refused by every other."""
    signer = Signer(("k1",))
    token = signer.dumps(Purpose.CANCEL, [1, 2])
    for purpose in (Purpose.CONFIRM, Purpose.UNSUBSCRIBE, Purpose.FORWARD):
        with pytest.raises(TokenError) as exc:
            signer.loads(purpose, token)
        assert exc.value.kind == "invalid"


def test_expired_token_says_whose_it_was():
    """Past max_age a token is expired, and still names its ids (to offer a fresh link)."""
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    token = Signer(("k1",), now=lambda: start).dumps(Purpose.CONFIRM, [5, 6])
    later = Signer(("k1",), now=lambda: start + dt.timedelta(seconds=101))
    assert Signer(("k1",), now=lambda: start + dt.timedelta(seconds=100)).loads(
        Purpose.CONFIRM, token, max_age=100) == [5, 6]
    with pytest.raises(TokenError) as exc:
        later.loads(Purpose.CONFIRM, token, max_age=100)
    assert exc.value.kind == "expired" and exc.value.payload == [5, 6]


def test_rotation_verifies_old_keys_and_signs_with_the_newest():
    """With FLEXMAIL_SECRET_KEYS=new,old, old tokens verify and new ones are signed by new."""
    old = Signer(("old",))
    rotated = Signer(("new", "old"))
    token = old.dumps(Purpose.CONFIRM, [1, 1])
    assert rotated.loads(Purpose.CONFIRM, token) == [1, 1]
    fresh = rotated.dumps(Purpose.CONFIRM, [2, 2])
    assert Signer(("new",)).loads(Purpose.CONFIRM, fresh) == [2, 2]
    with pytest.raises(TokenError):
        old.loads(Purpose.CONFIRM, fresh)
    with pytest.raises(TokenError):  # once the old key is dropped, its tokens die
        Signer(("new",)).loads(Purpose.CONFIRM, token)
