"""The suppression service: matching on normalised keys, scopes, domains, bulk lookups, and the
rule that lets only the person's own signup pass the entries they chose."""

from __future__ import annotations

import pytest

from flexmail.domain.addresses import normalize
from flexmail.services.suppression import suppressions
from flexmail.services.suppression.suppressions import Actor

MARKETER = Actor("test")
ADMIN = Actor("admin-test", admin=True)


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


def _suppress(account_id, *emails, reason="manual", scope="account", actor=MARKETER, domains=()):
    return suppressions.suppress(account_id, emails=list(emails), domains=list(domains), reason=reason,
                                 scope=scope, actor=actor)


def _blocked(account_id, raw) -> bool:
    return suppressions.is_suppressed(account_id, normalize(raw).normalized) is not None


@pytest.mark.parametrize("stored,probe", [
    ("Reader@Example.COM", "reader@example.com"),  # case, local part included (match key only)
    ("reader@example.com", "  READER@EXAMPLE.COM "),  # surrounding spaces
    ("user@bücher.de", "user@xn--bcher-kva.de"),  # IDN: Unicode and Punycode
    ("user@BÜCHER.DE", "User@Bücher.de"),  # IDN, upper case
    ("jos\u00e9@example.com", "jose\u0301@example.com"),  # NFC
    ("\u00c5SA@example.com", "\u00e5sa@example.com"),  # Unicode case in the local part
])
def test_equal_addresses_match_whatever_their_spelling(ctx, account, stored, probe):
    """Case, IDN form, surrounding whitespace and Unicode composition do not escape an entry."""
    _suppress(account.id, stored)
    assert _blocked(account.id, probe)
    (result,) = suppressions.check_many(account.id, [probe])
    assert result["suppressed"] and result["reason"] == "manual" and result["scope"] == "account"


@pytest.mark.parametrize("stored,probe", [
    ("reader@example.com", "reader+news@example.com"),  # no +tag folding (standards I6)
    ("reader@example.com", "re.ader@example.com"),  # no dot folding
    ("reader@example.com", "reader@example.co"),
    ("reader@example.com", "reader@mail.example.com"),
    ("user@bücher.de", "user@bucher.de"),
])
def test_different_addresses_do_not_match(ctx, account, stored, probe):
    """Only equal addresses match: tags, dots, other domains and look-alikes are other people."""
    _suppress(account.id, stored)
    assert not _blocked(account.id, probe)
    assert suppressions.check_many(account.id, [probe])[0]["suppressed"] is False


def test_account_entries_stay_in_their_account_and_global_ones_cover_all(ctx, account, create_account):
    """An account's entry blocks only that account; a platform-wide one blocks every account,
    which sees it only as 'global' without its reason."""
    other = create_account("Globex")
    _suppress(account.id, "mine@example.com", reason="complaint")
    assert _blocked(account.id, "mine@example.com") and not _blocked(other.id, "mine@example.com")
    _suppress(account.id, "everyone@example.com", reason="hard_bounce", scope="global", actor=ADMIN)
    for acct in (account, other):
        (result,) = suppressions.check_many(acct.id, ["everyone@example.com"])
        assert result == {"email": "everyone@example.com", "valid": True, "suppressed": True, "reason": None,
                          "scope": "global"}
    (revealed,) = suppressions.check_many(other.id, ["everyone@example.com"], reveal_global=True)
    assert revealed["reason"] == "hard_bounce"
    with pytest.raises(suppressions.NotPermitted):
        _suppress(account.id, "x@example.com", scope="global", actor=MARKETER)


def test_own_entry_wins_over_global_and_serious_reasons_first(ctx, account):
    """With several entries the account's own is shown, the most serious reason first."""
    _suppress(account.id, "a@example.com", reason="manual")
    _suppress(account.id, "a@example.com", reason="complaint")
    _suppress(account.id, "a@example.com", reason="hard_bounce", scope="global", actor=ADMIN)
    (result,) = suppressions.check_many(account.id, ["a@example.com"])
    assert (result["reason"], result["scope"]) == ("complaint", "account")


def test_domain_entry_blocks_every_address_at_that_domain_only(ctx, account, create_account):
    """@example.net blocks any address there, in that account; subdomains and others are not covered."""
    other = create_account("Globex")
    _suppress(account.id, domains=["@Example.NET"], reason="manual")
    assert _blocked(account.id, "anyone@example.net") and _blocked(account.id, "Other@EXAMPLE.net")
    assert not _blocked(account.id, "anyone@mail.example.net")
    assert not _blocked(account.id, "anyone@example.org")
    assert not _blocked(other.id, "anyone@example.net")
    _suppress(account.id, domains=["xn--bcher-kva.de"])
    assert _blocked(account.id, "leser@BÜCHER.de")


def test_bulk_helpers_for_other_send_paths(ctx, account):
    """suppressed_addresses and suppressed_hashes answer for a whole batch, honouring domains and globals."""
    _suppress(account.id, "one@example.com")
    _suppress(account.id, domains=["blocked.example"])
    _suppress(account.id, "glob@example.com", scope="global", actor=ADMIN)
    batch = ["one@example.com", "x@blocked.example", "glob@example.com", "free@example.com"]
    assert suppressions.suppressed_addresses(account.id, batch) == set(batch[:3])
    h = suppressions.hasher()
    addr_keys = {h.address(a): a for a in batch}
    assert {addr_keys[k] for k in suppressions.suppressed_hashes(account.id, addr_keys)} == {
        "one@example.com", "glob@example.com"}  # address keys alone do not see the domain entry
    assert suppressions.domain_key("x@blocked.example") in suppressions.suppressed_hashes(
        account.id, [suppressions.domain_key("x@blocked.example")])
    assert suppressions.suppressed_hashes(account.id, []) == set()


def test_check_of_100000_addresses_answers_each_in_input_order(ctx, account):
    """The largest allowed check: one answer per input, in order, invalid inputs marked."""
    _suppress(account.id, *[f"user{i}@example.com" for i in range(0, 100_000, 1000)], reason="unsubscribed")
    emails = [f"user{i}@example.com" if i % 5000 else "not an address" for i in range(100_000)]
    results = suppressions.check_many(account.id, emails)
    assert [r["email"] for r in results] == emails
    assert sum(r["suppressed"] for r in results) == 80  # every 1000th, less those replaced by junk
    assert sum(not r["valid"] for r in results) == 20
    assert results[1000] == {"email": "user1000@example.com", "valid": True, "suppressed": True,
                             "reason": "unsubscribed", "scope": "account"}
    with pytest.raises(suppressions.ValidationFailed):
        suppressions.check_many(account.id, ["a@example.com"] * 100_001)


def test_adding_again_keeps_the_entry_and_reports_bad_inputs(ctx, account):
    """Repeats are counted as existing; invalid inputs come back by position and reason, not echoed."""
    first = _suppress(account.id, "a@example.com", "b@example.com")
    again = _suppress(account.id, "A@example.com", "<script>@", "c@example.com")
    assert (first.added, again.added, again.existing) == (2, 1, 1)
    assert again.rejected == [{"field": "emails", "index": 1, "reason": again.rejected[0]["reason"]}]
    assert "<script>" not in again.rejected[0]["reason"]
    assert [e.email for e in again.entries] == ["a@example.com", "c@example.com"]


@pytest.mark.parametrize("reason,passes", [("erasure", True), ("unsubscribed", True), ("manual", False),
                                           ("hard_bounce", False), ("complaint", False), ("not_me", True)])
def test_only_the_persons_own_signup_passes_entries_they_chose(ctx, account, reason, passes):
    """The hosted form (and undo) pass an erasure, unsubscribed or "this was not me" entry
    (issue 12.6: "not me" stops others' signups, not the person's own); the API never does."""
    from flexmail.extensions import db

    with db.session.begin():
        suppressions.add_suppression(db.session, account_id=account.id,
                                     address_hash=suppressions.hasher().address("p@example.com"), reason=reason,
                                     source="test")
    assert suppressions.blocks_signup(account.id, "p@example.com", channel="api") is not None
    for channel in ("form", "undo"):
        assert (suppressions.blocks_signup(account.id, "p@example.com", channel=channel) is None) is passes


def test_person_cannot_pass_domain_or_global_entries(ctx, account):
    """A domain entry or a platform-wide entry blocks the hosted form too, whatever its reason."""
    _suppress(account.id, domains=["example.org"], reason="unsubscribed")
    _suppress(account.id, "g@example.com", reason="unsubscribed", scope="global", actor=ADMIN)
    assert suppressions.blocks_signup(account.id, "x@example.org", channel="form") is not None
    assert suppressions.blocks_signup(account.id, "g@example.com", channel="form") is not None


def test_add_suppression_keeps_its_contract(ctx, account):
    """The single-entry helper: a new entry comes back flushed and marked made now, an
    identical one is reused and marked as not made."""
    from flexmail.extensions import db

    key = suppressions.hasher().address("k@example.com")
    with db.session.begin():
        row, made = suppressions.add_suppression(db.session, account_id=account.id, address_hash=key,
                                                 reason="unsubscribed", source="unsubscribe:1")
        assert made and row.id is not None
    with db.session.begin():
        again, made = suppressions.add_suppression(db.session, account_id=account.id, address_hash=key,
                                                   reason="unsubscribed", source="unsubscribe:2")
        assert not made and again.id == row.id
    assert suppressions.find_suppression(account.id, key).id == row.id
