"""Rule families of the bounce classifier (domain.bounces) that the corpus figures rest on,
each on a small synthetic report: how recipients are read, which words decide, and when a
"user unknown" is not proof enough to suppress."""

from __future__ import annotations

import pytest

from flexmail.domain.bounces import BounceClass, classify_message

ORIGINAL = """From: Acme News <news@acme.example>
To: {to}
Subject: Weekly News
Message-ID: <abc123@flexmail.test>

Hello, the weekly news.
"""


def text_bounce(body: str, *, to="reader@example.org", subject="Mail delivery failed",
                sender="Mail Delivery System <MAILER-DAEMON@mx.example.net>") -> bytes:
    """A non-standard bounce: plain text, the original quoted after a marker."""
    return (f"From: {sender}\nTo: news@acme.example\nSubject: {subject}\n"
            f"Message-ID: <report-1@mx.example.net>\n\n{body}\n\n"
            f"------ This is a copy of the message, including all the headers. ------\n\n"
            f"{ORIGINAL.format(to=to)}").encode()


def dsn(fields: str, *, human="Your message could not be delivered.", reporting="dns; mx.example.net",
        to="reader@example.org") -> bytes:
    """An RFC 3464 report with one recipient block ``fields`` (one field per line)."""
    return (f"From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\nTo: news@acme.example\n"
            f"Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
            f"Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n"
            f"--B\nContent-Type: text/plain\n\n{human}\n\n"
            f"--B\nContent-Type: message/delivery-status\n\nReporting-MTA: {reporting}\n\n{fields.strip()}\n\n"
            f"--B\nContent-Type: text/rfc822-headers\n\n{ORIGINAL.format(to=to).split(chr(10) + chr(10))[0]}\n\n"
            f"--B--\n").encode()


def results(raw: bytes) -> dict[str, tuple[str, str]]:
    report = classify_message(raw)
    assert report is not None
    return {r.recipient: (r.reason, r.bounce_class.value) for r in report.results}


def one(raw: bytes) -> tuple[str, str, str]:
    report = classify_message(raw)
    assert report is not None and len(report.results) == 1, report
    result = report.results[0]
    return result.recipient, result.reason, result.bounce_class.value


# --- which address is the recipient ------------------------------------------------------------

def test_a_source_routed_final_recipient_is_the_mailbox_after_the_route():
    """RFC 5321 source route ``<@relay:user@domain>``: the recipient is ``user@domain``."""
    raw = dsn("Final-Recipient: rfc822; <@relay.example.org:reader@example.org>\nAction: failed\nStatus: 5.1.1\n"
              "Diagnostic-Code: smtp; 550 5.1.1 <reader@example.org>... User unknown")
    assert one(raw) == ("reader@example.org", "userunknown", "hard")


def test_a_final_recipient_without_local_part_is_read_from_the_mta_text():
    """Sendmail sometimes writes ``Final-Recipient: rfc822; @host``: the one address its own
    text names is the recipient, never "@host"."""
    raw = dsn("Final-Recipient: RFC822; @mx.example.org\nAction: failed\nStatus: 5.1.2",
              human="----- The following addresses had permanent fatal errors -----\n<reader@example.org>\n"
                    "    (reason: 550 Host unknown)\n\n----- Transcript of session follows -----\n"
                    "550 5.1.2 <reader@example.org>... Host unknown (Name server: mx.example.org: no data known)")
    assert one(raw) == ("reader@example.org", "hostunknown", "hard")


def test_a_quoted_message_id_and_original_are_no_recipients():
    """Zoho quotes the original inline ("Received:from ...", "Message-ID:<...@...>"): neither
    the Message-ID nor the original's sender is a failed recipient."""
    body = ("This message was created automatically by mail delivery software.\n"
            "A message that you sent could not be delivered to one or more of its recipients. "
            "This is a permanent error.\n\n"
            "reader@example.org Invalid Address, ERROR_CODE :550, ERROR_CODE :Requested action not taken: "
            "mailbox unavailable\n\n"
            "Received:from mail.zoho.example by mx.zoho.example with SMTP id 1418381365566172.67499;\n"
            "Message-ID:<14a3e1e110a.b4fa4ce3.5193856207@zoho.example.com>\nDate:Fri, 12 Dec 2014 10:49:25 +0000\n"
            "From:Neko <neko@zoho.example.com>\nTo:<reader@example.org>\n")
    raw = (f"From: mailer-daemon@mail.zoho.example\nTo: neko@zoho.example.com\n"
           f"Subject: Undelivered Mail Returned to Sender\n\n{body}").encode()
    assert set(results(raw)) == {"reader@example.org"}


# --- words that name the reason -----------------------------------------------------------------

def test_cpanel_cannot_route_message_is_an_unknown_domain_not_a_blocklisting():
    """cPanel Exim's wording for "Unrouteable address" mentions "blacklisted" among the
    possibilities: it is about the recipient's domain (hard), not our IP."""
    raw = text_bounce("This message was created automatically by mail delivery software.\n\n"
                      "A message that you sent could not be delivered to one or more of its\nrecipients. "
                      "This is a permanent error. The following address(es) failed:\n\n  reader@example.net\n"
                      "    The mail server could not deliver mail to reader@example.net.  The account or domain "
                      "may not exist, they may be blacklisted, or missing the proper dns entries.",
                      to="reader@example.net")
    assert one(raw) == ("reader@example.net", "hostunknown", "hard")


def test_a_failed_callout_to_verify_our_sender_is_the_senders_problem():
    """The same cPanel words inside "Verification failed for <our sender> ... Sender verify
    failed" are about our envelope sender: never suppresses the recipient."""
    raw = text_bounce("This message was created automatically by mail delivery software.\n\n"
                      "A message that you sent could not be delivered to one or more of its\nrecipients. "
                      "This is a permanent error. The following address(es) failed:\n\n  reader@example.net\n"
                      "    SMTP error from remote mail server after RCPT TO:<reader@example.net>:\n"
                      "    550-Verification failed for <bounce@acme.example>\n"
                      "    550-The mail server could not deliver mail to bounce@acme.example.  The account or "
                      "domain may not exist, they may be blacklisted, or missing the proper dns entries.\n"
                      "    550 Sender verify failed", to="reader@example.net")
    assert one(raw) == ("reader@example.net", "rejected", "sender")


def test_a_refused_envelope_sender_is_the_senders_problem():
    """qmail: "Connected to ... but sender was rejected" then a 5.1.1 "user unknown" that is
    about our envelope sender, not the recipient."""
    raw = text_bounce("Hi. This is the qmail-send program at mx.example.net.\nI'm afraid I wasn't able to deliver "
                      "your message to the following addresses.\nThis is a permanent error; I've given up.\n\n"
                      "<reader@example.org>:\nConnected to 192.0.2.225 but sender was rejected.\n"
                      "Remote host said: 550 5.1.1 <bounce@acme.example>... User unknown\n", subject="failure notice")
    assert one(raw) == ("reader@example.org", "rejected", "sender")


def test_gmails_address_not_found_without_the_remote_reply_is_hard():
    """Gmail's own verdict ("because the address couldn't be found") with only Status 5.0.0."""
    raw = dsn("Final-Recipient: rfc822; reader@example.it\nAction: failed\nStatus: 5.0.0",
              human="** Address not found **\n\nYour message wasn't delivered to reader@example.it because the "
                    "address couldn't be found. Check for typos or unnecessary spaces and try again.",
              to="reader@example.it")
    assert one(raw) == ("reader@example.it", "userunknown", "hard")


def test_a_failed_delivery_program_is_a_mailer_error_whatever_the_status():
    """Postfix derives 5.1.1 from procmail's exit status: the program failed, not the address."""
    raw = dsn("Final-Recipient: rfc822; reader@example.org\nAction: failed\nStatus: 5.1.1\n"
              "Diagnostic-Code: x-unix; procmail: Couldn't create \"/var/spool/mail/reader\"",
              human="<reader@example.org>: user unknown. Command output: procmail: Couldn't create "
                    "\"/var/spool/mail/reader\"")
    assert one(raw) == ("reader@example.org", "mailererror", "soft")


@pytest.mark.parametrize("words,reason", [("Mailbox full", "mailboxfull"), ("Account is disabled", "suspend")])
def test_words_about_a_mailbox_that_exists_beat_an_address_status(words, reason):
    """"550 5.1.1 ... Mailbox full": the mailbox exists, whatever the status subject says."""
    raw = dsn(f"Final-Recipient: rfc822; reader@example.org\nAction: failed\nStatus: 5.1.1\n"
              f"Diagnostic-Code: smtp; 550 5.1.1 <reader@example.org>: {words}")
    assert one(raw) == ("reader@example.org", reason, "soft")


def test_sendmails_own_line_for_a_recipient_beats_the_next_recipients_lines():
    """In a Sendmail transcript "554 <a>... Remote protocol error" is a's verdict; the
    "Host unknown" lines after it are about another recipient and another host."""
    body = ("   ----- Transcript of session follows -----\nWhile talking to example.edu:\n>>> DATA\n"
            "<<< 421 example.edu Service not available\n"
            "554 <reader@example.edu>... Remote protocol error: Connection reset by peer during result wait "
            "with example.edu\n"
            "550 example.or.jp (smtp)... 550 Host unknown\n"
            "554 <other@example.or.jp>... 550 Host unknown (Authoritative answer from name server)\n")
    raw = text_bounce(body, to="reader@example.edu", subject="Returned mail: Host unknown",
                      sender="Mail Delivery Subsystem <MAILER-DAEMON@example.com>")
    found = results(raw)
    assert found["reader@example.edu"][1] == "soft"
    assert found["other@example.or.jp"] == ("hostunknown", "hard")


def test_an_amazon_ses_receipt_rule_bounce_is_filtered():
    """SES receiving answers with the bounce action of the domain owner's receipt rule (a
    template text): "Mailbox does not exist" there is a rule, not a lookup."""
    fields = ("Final-Recipient: rfc822; reader@example.org\nAction: failed\nStatus: 5.1.1\n"
              "Diagnostic-Code: smtp; 550 5.1.1 Mailbox does not exist")
    assert one(dsn(fields, reporting="dns; inbound-smtp.us-west-2.amazonaws.com"))[1:] == ("filtered", "soft")
    assert one(dsn(fields))[1:] == ("userunknown", "hard")


# --- a quoted "user unknown" that nothing places at RCPT --------------------------------------------

POSTFIX = ("This is the Postfix program at host mx.example.net.\n\nI'm sorry to have to inform you that your "
           "message could not\nbe delivered to one or more recipients.\n\n"
           "<reader@example.jp>: host mx.example.jp[192.0.2.22] said: {reply}\n")


@pytest.mark.parametrize("reply,klass", [
    ("550 : User unknown", "soft"),  # no status, no command, the reply names nobody
    ("550 : User unknown (in reply to RCPT TO command)", "hard"),
    ("550 <reader@example.jp>: User unknown", "hard"),  # a reply naming the address it was given
    ("550 5.1.1 : User unknown", "hard"),
])
def test_a_quoted_user_unknown_suppresses_only_when_something_places_it_at_rcpt(reply, klass):
    """Some receivers answer "user unknown" after DATA when the recipient's own filter refuses
    the sender (Sisimai's ``filtered``): without an address status, the RCPT command or the
    address in the reply, it does not suppress at once."""
    raw = text_bounce(POSTFIX.format(reply=reply), to="reader@example.jp",
                      subject="Undelivered Mail Returned to Sender")
    recipient, reason, got = one(raw)
    assert (recipient, got) == ("reader@example.jp", klass)
    assert reason == ("filtered" if klass == "soft" else "userunknown")


@pytest.mark.parametrize("said", [
    "Sorry, no SMTP connection got far enough; most progress was RCPT TO response; remote host 192.0.2.32 "
    "said: 550 User unknown",
    "Technical details: SMTP:RCPT host 192.0.2.8: 553 No such user here",
])
def test_other_mtas_wordings_for_a_refusal_at_rcpt(said):
    """qmail's "most progress was RCPT TO response" and "SMTP:RCPT host" place the refusal at RCPT."""
    raw = text_bounce("Hi. This is the qmail-send program at mx.example.net.\nI'm afraid I wasn't able to deliver "
                      "your message to the following addresses.\nThis is a permanent error; I've given up.\n\n"
                      f"<reader@example.ne.jp>:\n{said}\n", to="reader@example.ne.jp", subject="failure notice")
    assert one(raw) == ("reader@example.ne.jp", "userunknown", "hard")


def test_our_relays_own_reply_is_not_second_guessed():
    """A synchronous reply of our relay is not a quote: "550 no such user" stays hard."""
    from flexmail.domain.bounces import classify_smtp_reply

    assert classify_smtp_reply("reader@example.org", 550, "User unknown").results[0].bounce_class == BounceClass.HARD
