"""The bulk normaliser and keys give exactly what the single-address functions give."""

from __future__ import annotations

import json
import random

import pytest

from flexmail.domain.addresses import InvalidAddress, address_hash, normalize
from flexmail.domain.matching import Hasher, Normalizer, normalize_domain
from flexmail.domain.suppression_files import FORMULA_PROBLEM, cell_line, read_lines
from tests.corpus import corpus

CORPORA = corpus()


def _inputs():
    found = [c["address"] for c in json.loads((CORPORA / "isemail" / "tests.json").read_text())["tests"]]
    ev = json.loads((CORPORA / "python-email-validator" / "test_syntax_cases.json").read_text())["tests"]
    for group in ev.values():
        for case in group.get("cases", []):
            if isinstance(case, dict) and isinstance(case.get("email_input"), str):
                found.append(case["email_input"])
    found += [
        "Reader@Example.COM", " reader@example.com ", "reader@example.com\n", "a@xn--bcher-kva.de", "a@BÜCHER.de",
        "x" * 64 + "@example.com", "x" * 65 + "@example.com", "a@" + "b" * 63 + ".com", "a@" + "b" * 64 + ".com",
        "a@" + ".".join(["abcdefghi"] * 25) + ".com",
        "a" * 60 + "@" + "d" * 60 + "." + "e" * 60 + "." + "f" * 60 + ".com",
        "a@localhost", "a@test", "a@x.test", "a@x.invalid", "a@example", "a@123.123", "a@ab--cd.com", "a@xn--.com",
        "a..b@example.com", ".a@example.com", "a.@example.com", "=cmd|'/C calc'!A0", "=1+1@example.com",
        "a@-example.com", "a@example-.com", "a@exa_mple.com", "a@@example.com", "@example.com", "a@",
        "jose\u0301@example.com", "josé@example.com", "a\t@example.com", "a@example.com\r", 'a"b@example.com',
        "A@EXAMPLE.COM", "a@exämple.com", "a@EXÄMPLE.com", "user+tag@example.com", "a@192.168.0.1",
        "Postmaster@Example.com", "ABUSE@example.com", "Info.Desk@example.com", "a@b.c", "a@1.2.3.com", "a@x.c0m",
        "a@x.onion", "a@x.LOCAL", "a@x.arpa", "a@sub.localhost", "a@x.example", "a@xn--bcher-kva.de",
        "a@ab--cd.example.com", "a@a-b.c-d.com", "a@" + "d" * 63 + ".com", "a@" + "d" * 64 + ".com",
        "a@" + ".".join(["d" * 63] * 3) + "." + "e" * 61, "a@" + ".".join(["d" * 63] * 3) + "." + "e" * 62,
        "a@example.com.", "a@.example.com", "a@example..com", "a@EXAMPLE.COM",
    ]
    return found


def _answer(fn, raw):
    try:
        address = fn(raw)
    except InvalidAddress as exc:
        return ("invalid", exc.reason)
    return ("ok", address.normalized, address.ascii_email, address.smtputf8)


def test_bulk_normaliser_matches_normalize_on_every_input():
    """Corpora written by others plus edge cases: same Address, or the same refusal reason."""
    normalizer = Normalizer()
    inputs = _inputs()
    assert len(inputs) > 300
    for raw in inputs + inputs:  # twice: the second round hits the domain cache
        expected = _answer(normalize, raw)
        assert _answer(normalizer, raw) == expected, repr(raw)
        if expected[0] == "ok":
            assert normalizer.normalized(raw) == expected[1]


def test_bulk_normaliser_matches_normalize_on_random_ascii():
    """Random strings over the characters that matter (atext, dots, @, hyphens, case) agree too."""
    rng = random.Random(4)
    alphabet = "aZ09.-_+@=!'`~ \tÄ"
    normalizer = Normalizer()
    for _ in range(5000):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) + rng.choice(
            ["@example.com", "@EXAMPLE.com", "@ex-ample.org", "@x.test", ""])
        assert _answer(normalizer, raw) == _answer(normalize, raw), repr(raw)


@pytest.mark.parametrize("test_environment", [False, True])
def test_bulk_normaliser_matches_normalize_on_random_domains(test_environment):
    """Random domains (labels, hyphens, digits, case, dots, special-use names) agree too."""
    rng = random.Random(11)
    parts = ["a", "Z", "9", "-", "--", "xn--", "test", "local", "x" * 63, "é"]
    normalizer = Normalizer(test_environment=test_environment)
    for _ in range(5000):
        labels = ["".join(rng.choice(parts) for _ in range(rng.randint(0, 4))) for _ in range(rng.randint(1, 4))]
        raw = "Some.One@" + ".".join(labels)
        expected = _answer(lambda r: normalize(r, test_environment=test_environment), raw)
        assert _answer(normalizer, raw) == expected, repr(raw)


def test_hasher_keys_equal_address_hash():
    """The bulk hasher's address key is address_hash; a domain key is that of '@' + domain."""
    for pepper in ["pepper", "", "p" * 64, "p" * 65, "ключ-" * 40]:  # short, empty, block-sized, long keys
        hasher = Hasher(pepper)
        for normalized in ["Reader@example.com", "josé@bücher.de", "a@b.co", "ÅSA@example.com"]:
            assert hasher.address(normalized) == address_hash(normalized, pepper)
        assert hasher.keys("Reader@example.com")[1] == address_hash("@example.com", pepper)


@pytest.mark.parametrize("raw,expected", [
    ("example.com", "example.com"), ("@Example.COM", "example.com"), (" xn--bcher-kva.de ", "bücher.de"),
    ("BÜCHER.de", "bücher.de"),
])
def test_domains_normalise_like_the_domain_of_an_address(raw, expected):
    """A domain entry is matched on the same form as the domain of a normalised address."""
    assert normalize_domain(raw) == expected


@pytest.mark.parametrize("raw", ["", "@", "a@example.com", "localhost", "exa mple.com", "-x.com", "x.invalid"])
def test_bad_domains_are_refused(raw):
    """Addresses, special-use names and malformed domains are not domains."""
    with pytest.raises(InvalidAddress):
        normalize_domain(raw)


def test_file_reader_finds_the_email_column_and_numbers_lines():
    """A Mailchimp-style export: the header names the column; blank lines are skipped; numbers are physical."""
    text = ('"First Name","Email Address","Last Name"\r\n"A","a@example.com","B"\r\n\r\n'
            '"Multi\nline","b@example.com","C"\r\n"D","","E"\r\nshort\r\n')
    lines = list(read_lines(text))
    assert [(line.number, line.value, line.problem) for line in lines] == [
        (2, "a@example.com", None), (4, "b@example.com", None),
        (6, None, "No address in the email column."), (7, None, "No address in the email column."),
    ]


def test_file_reader_one_address_a_line_and_escaped_formulas():
    """Without a header every line is an address; a quote-escaped formula cell is read as its address."""
    lines = list(read_lines("a@example.com\n'=b@example.com\n=cmd|' /C calc'!A0\n"))
    assert [line.value for line in lines] == ["a@example.com", "=b@example.com", "=cmd|' /C calc'!A0"]
    assert [line.formula for line in lines] == [False, True, True]
    assert cell_line(1, "\t-x").formula and FORMULA_PROBLEM
