"""Address validation against test material written by others (tests/corpora)."""

from __future__ import annotations

import json

import pytest

from flexmail.domain.addresses import Address, InvalidAddress, address_hash, match_key, normalize
from tests.corpus import corpus

CORPORA = corpus()
ISEMAIL = json.loads((CORPORA / "isemail" / "tests.json").read_text())["tests"]
EV = json.loads((CORPORA / "python-email-validator" / "test_syntax_cases.json").read_text())["tests"]


def _answer(address):
    """Every input gets a clear answer: an Address, or InvalidAddress with a reason."""
    try:
        return normalize(address)
    except InvalidAddress as exc:
        assert exc.reason and isinstance(exc.reason, str)
        return exc


@pytest.mark.parametrize("case", ISEMAIL, ids=lambda c: f"isemail-{c['id']}-{c['diagnosis']}")
def test_isemail_suite_gets_a_clear_answer_and_errors_are_refused(case):
    """is_email's suite: no crash on any input; every ISEMAIL_ERR, CFWS and DEPREC address is refused."""
    answer = _answer(case["address"])
    if case["address"] != case["address"].strip(" ") and isinstance(answer, Address):
        # Surrounding spaces are trimmed by design (a pasted address), never inner ones.
        assert answer.normalized == normalize(case["address"].strip(" ")).normalized
        return
    if case["category"] in {"ISEMAIL_ERR", "ISEMAIL_CFWS", "ISEMAIL_DEPREC", "ISEMAIL_RFC5321"}:
        # RFC5321 holds quoted local parts and address literals: we refuse them by choice.
        assert isinstance(answer, InvalidAddress)
    if case["category"] == "ISEMAIL_VALID" and case["address"] != "test@io":
        assert isinstance(answer, Address)
    if case["diagnosis"] == "ISEMAIL_RFC5322_LOCAL_TOOLONG":
        assert isinstance(answer, InvalidAddress)  # 64-octet local part enforced (strict)


@pytest.mark.parametrize("case", EV["test_email_valid"]["cases"], ids=lambda c: c["email_input"])
def test_valid_addresses_normalize_exactly_as_email_validator(case):
    """Our wrapper stores what email-validator returns: case of the local part kept, domain folded."""
    if "<" in case["email_input"] or case["email_input"].startswith('"'):
        # Display names and quoted local parts are refused by design.
        assert isinstance(_answer(case["email_input"]), InvalidAddress)
        return
    answer = normalize(case["email_input"])
    assert answer.normalized == case["output"]["normalized"]
    assert answer.smtputf8 == case["output"]["smtputf8"]


@pytest.mark.parametrize("case", EV["test_email_valid_intl_local_part"]["cases"], ids=lambda c: c["email_input"])
def test_internationalized_local_parts_are_accepted_for_smtputf8(case):
    """Non-ASCII local parts are kept (sent with SMTPUTF8), NFC-normalised."""
    answer = _answer(case["email_input"])
    if case["email_input"].count("@") != 1 or "<" in case["email_input"]:
        return
    assert isinstance(answer, Address)
    assert answer.normalized == case["output"]["normalized"]
    assert answer.smtputf8 is True


@pytest.mark.parametrize("case", EV["test_email_invalid_syntax"]["cases"], ids=lambda c: repr(c["email_input"])[:60])
def test_invalid_syntax_is_refused_without_echoing_the_address(case):
    """Each invalid address is refused; the reason never repeats the input."""
    answer = _answer(case["email_input"])
    assert isinstance(answer, InvalidAddress)
    local = case["email_input"].partition("@")[0]
    if len(local) > 3:
        assert local not in answer.reason


@pytest.mark.parametrize("case", EV["test_email_invalid_reserved_domain"]["cases"], ids=lambda c: c["email_input"])
def test_special_use_domains_are_refused(case):
    """Special-use domains (.test, .localhost, .invalid...) cannot receive mail: refused."""
    assert isinstance(_answer(case["email_input"]), InvalidAddress)


@pytest.mark.parametrize("case", EV["test_email_unsafe_character"]["cases"], ids=lambda c: repr(c["s"]))
def test_unsafe_characters_are_refused(case):
    """Invisible and separator characters are refused on either side of the @."""
    for candidate in (case["s"] + "@example.com", "test@" + case["s"] + ".example.com"):
        assert isinstance(_answer(candidate), InvalidAddress)


@pytest.mark.parametrize("case", EV["test_email_valid_only_if_quoted_local_part"]["cases"],
                         ids=lambda c: c["email_input"])
def test_quoted_local_parts_are_refused(case):
    """Quoted local parts are refused (email-validator's default; many MTAs mishandle them)."""
    assert isinstance(_answer(case["email_input"]), InvalidAddress)


@pytest.mark.parametrize("raw", [
    "a@example.com\r\nBcc: victim@example.com", "a@example.com\n", "\ra@example.com", "a\x00b@example.com",
    "a@example.com\t",
])
def test_control_characters_are_refused_not_trimmed(raw):
    """CR, LF, NUL and TAB anywhere are refused (header injection), not silently trimmed."""
    assert isinstance(_answer(raw), InvalidAddress)


def test_length_limits():
    """254 octets in all and 64 before the @ are accepted; one more is refused."""
    local = "a" * 64
    domain = ".".join(["b" * 60, "c" * 60, "d" * 60, "e" * 2]) + ".com"  # 64+1+189 = 254
    ok = f"{local}@{domain}"
    assert len(ok) == 254 and isinstance(_answer(ok), Address)
    assert isinstance(_answer("a" + ok), InvalidAddress)
    assert isinstance(_answer("a" * 65 + "@example.com"), InvalidAddress)
    assert isinstance(_answer("é" * 33 + "@example.com"), InvalidAddress)  # 66 octets in 33 characters


def test_matching_key_folds_case_and_idn_but_keeps_dots_and_tags():
    """Case, surrounding spaces and IDN spelling match; dots and +tags are different addresses."""
    pepper = "p"
    same = ["Reader@Example.com", "  reader@EXAMPLE.COM ", "READER@example.com"]
    assert len({address_hash(normalize(a).normalized, pepper) for a in same}) == 1
    idn = normalize("jeff@xn--fiqq24b10vi0d.tw")
    assert idn.normalized == "jeff@臺網中心.tw" and idn.ascii_email == "jeff@xn--fiqq24b10vi0d.tw"
    assert match_key(idn.normalized) == match_key(normalize("JEFF@臺網中心.tw").normalized)
    different = ["reader@example.com", "re.ader@example.com", "reader+news@example.com"]
    assert len({address_hash(normalize(a).normalized, pepper) for a in different}) == 3
    assert normalize("Reader@Example.com").normalized == "Reader@example.com"  # local-part case kept


def test_hash_depends_on_the_pepper():
    """Without the pepper the hash cannot be recomputed from a dictionary of addresses."""
    assert address_hash("a@example.com", "one") != address_hash("a@example.com", "two")
