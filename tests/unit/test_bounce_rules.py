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
    """Gmail's own verdict ("because the address couldn't be found") with only Status 5.0.0,
    in a DSN from Google's mailer; the same sentence from another MTA proves nothing."""
    human = ("** Address not found **\n\nYour message wasn't delivered to reader@example.it because the "
             "address couldn't be found. Check for typos or unnecessary spaces and try again.")
    fields = "Final-Recipient: rfc822; reader@example.it\nAction: failed\nStatus: 5.0.0"
    assert one(dsn(fields, human=human, to="reader@example.it", reporting="dns; googlemail.com")) == (
        "reader@example.it", "userunknown", "hard")
    assert one(dsn(fields, human=human, to="reader@example.it"))[1:] == ("filtered", "soft")


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
    ("550 <reader@example.jp>: User unknown", "soft"),  # naming the address places it nowhere
    ("550 5.1.1 : User unknown", "hard"),
])
def test_a_quoted_user_unknown_suppresses_only_when_something_places_it_at_rcpt(reply, klass):
    """Some receivers answer "user unknown" after DATA when the recipient's own filter refuses
    the sender (Sisimai's ``filtered``): without an address status (X.1.1) or the RCPT
    command, it does not suppress at once, even when the reply names the address."""
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


@pytest.mark.parametrize("fields,klass", [
    ("Status: 5.0.0\nDiagnostic-Code: smtp; 550 No such user", "soft"),
    ("Status: 5.2.1\nDiagnostic-Code: smtp; 550 5.2.1 <reader@example.org>... User Unknown", "soft"),
    ("Status: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 <reader@example.org>: User unknown", "hard"),
    ("Status: 5.1.1", "hard"),
    ("Status: 5.0.0\nDiagnostic-Code: smtp; 550 No such user (in reply to RCPT TO command)", "hard"),
])
def test_a_dsns_user_unknown_needs_an_address_status_or_the_rcpt_phase(fields, klass):
    """The same rule in an RFC 3464 report from any MTA: a plain 5.1.1 stays hard."""
    raw = dsn(f"Final-Recipient: rfc822; reader@example.org\nAction: failed\n{fields}")
    assert one(raw)[2] == klass


def test_a_real_postfix_refusal_at_rcpt_stays_hard():
    """Postfix's own wording, as a real Postfix writes it for a remote 5.1.1 at RCPT."""
    raw = dsn("Final-Recipient: rfc822; reader@example.jp\nOriginal-Recipient: rfc822;reader@example.jp\n"
              "Action: failed\nStatus: 5.1.1\nRemote-MTA: dns; mx.example.jp\n"
              "Diagnostic-Code: smtp; 550 5.1.1 <reader@example.jp>: Recipient address rejected: User unknown in "
              "local recipient table",
              human=POSTFIX.format(reply="550 5.1.1 <reader@example.jp>: Recipient address rejected: User unknown "
                                         "in local recipient table (in reply to RCPT TO command)"),
              to="reader@example.jp")
    assert one(raw) == ("reader@example.jp", "userunknown", "hard")


YAHOO = ("Sorry, we were unable to deliver your message to the following address.\n\n<reader@example.co.jp>:\n"
         "Remote host said:\n550 5.2.1 <reader@example.co.jp>... User Unknown\n{marker}\n")


@pytest.mark.parametrize("marker,klass", [("[RCPT_TO]", "hard"), ("", "soft")])
def test_yahoos_rcpt_to_marker_places_the_refusal_at_rcpt(marker, klass):
    raw = text_bounce(YAHOO.format(marker=marker), to="reader@example.co.jp", subject="Failure Notice",
                      sender="MAILER-DAEMON@yahoo.com")
    assert one(raw)[2] == klass


@pytest.mark.parametrize("diagnostic,klass", [
    ("550 5.1.351 Remote server returned unknown recipient or mailbox unavailable -> 550 Unknown user "
     "reader@example.ne.jp", "hard"),
    ("550 5.1.351 Remote server returned an error -> 550 Unknown user reader@example.ne.jp", "soft"),
])
def test_exchange_onlines_unknown_recipient_arrow_places_the_refusal_at_rcpt(diagnostic, klass):
    """Exchange Online writes "unknown recipient or mailbox unavailable -> <the remote reply
    to RCPT>" (Sisimai's Lhost::Office365)."""
    raw = dsn(f"Final-Recipient: rfc822;reader@example.ne.jp\nAction: failed\nStatus: 5.1.351\n"
              f"Diagnostic-Code: smtp;{diagnostic}", to="reader@example.ne.jp")
    assert one(raw)[2] == klass


def test_sendmails_own_line_keeps_the_rcpt_of_its_transcript():
    """Sendmail V5: ">>> RCPT To:<a>" then "<<< 550 ... User Unknown" and Sendmail's own
    "550 <a>... User unknown": the transcript places it at RCPT."""
    body = ("   ----- Transcript of session follows -----\nWhile talking to smtp.example.org:\n"
            ">>> RCPT To:<reader@example.org>\n<<< 550 <reader@example.org>, User Unknown\n"
            "550 <reader@example.org>... User unknown\n")
    raw = text_bounce(body, subject="Returned mail: User unknown",
                      sender="Mail Delivery Subsystem <MAILER-DAEMON@example.com>")
    assert one(raw) == ("reader@example.org", "userunknown", "hard")
    assert one(raw.replace(b">>> RCPT To:<reader@example.org>", b">>> DATA"))[2] == "soft"


# --- what an MTA's own format says (mta.py, Sisimai's Lhost readers and Rhost tables) ---------------

def raw_mail(headers: str, body: str) -> bytes:
    return (f"{headers.strip()}\nTo: news@acme.example\nMessage-ID: <report-2@mx.example.net>\n\n{body}\n\n"
            f"Original message follows.\n\n{ORIGINAL.format(to='reader@example.org')}").encode()


MTA_FORMATS = {
    "domino": ("From: Postmaster@example.org\nSubject: DELIVERY FAILURE: User Reader (reader@example.org) not "
               "listed in Domino Directory",
               "Your message\n\n  Subject: Weekly News\n\nwas not delivered to:\n\n  reader@example.org\n\n"
               "because:\n\n  User Reader (reader@example.org) not listed in Domino Directory\n",
               ("was not delivered to:", "could not be sent to:")),
    "notes": ("From: POSTMASTER@gw.example.org\nSubject: Undeliverable message",
              "------- Failure Reasons  --------\n\nUser  not listed in public Name & Address Book\n"
              "reader@example.org\n",
              ("Failure Reasons", "Reasons")),
    "exchange-ims": ("From: System Administrator <postmaster@example.org>\nSubject: Undeliverable: Weekly News",
                     "Your message\n\n  To:      reader@example.org\n  Subject: Weekly News\n"
                     "  Sent:    Thu, 29 Apr 2010 00:00:00 -0000\n\n"
                     "did not reach the following recipient(s):\n\n"
                     "reader@example.org on Thu, 29 Apr 2010 00:00:00 -0000\n    The recipient name is not "
                     "recognized\n\tThe MTS-ID of the original message is: c=us;a= ;p=acme;l=GW-0000\n"
                     "    MSEXCH:IMS:ACME:GW:MX 0 (000C05A6) Unknown Recipient\n",
                     ("MSEXCH:IMS:", "EXCH:")),
    "imail": ("From: \"Postmaster\" <postmaster@example.org>\nSubject: Undeliverable Mail\nX-Mailer: <SMTP32 v8.22>",
              "Unknown user: reader@example.org\n", ("X-Mailer: <SMTP32 v8.22>", "X-Mailer: Other")),
    "mcafee": ("From: <MAILER-DAEMON@mx.example.org>\nSubject: Delivery Status\n"
               "X-NAI-Header: Modified by McAfee Email and Web Security Virtual Appliance",
               "    --- The following addresses had delivery problems ---\n\n"
               "<reader@example.org>   (550 <reader@example.org>... User not exist)\n",
               ("X-NAI-Header: Modified by McAfee", "X-Other-Header: Modified by someone")),
}


@pytest.mark.parametrize("name", sorted(MTA_FORMATS))
def test_an_mtas_own_wording_for_a_missing_mailbox_in_its_own_format_is_hard(name):
    """The MTA reports its own directory lookup, in a format only it writes (Sisimai reads
    these as userunknown in its per-MTA readers); the marker removed, the words alone do
    not suppress."""
    headers, body, (marker, other) = MTA_FORMATS[name]
    raw = raw_mail(headers, body)
    assert one(raw) == ("reader@example.org", "userunknown", "hard")
    assert one(raw.replace(marker.encode(), other.encode()))[2] == "soft"


def test_powermtas_bad_mailbox_category_is_hard():
    fields = ("Final-Recipient: rfc822;reader@example.org\nAction: failed\nStatus: 5.2.1 (mailbox disabled)\n"
              "Diagnostic-Code: smtp;550 5.2.1 <reader@example.org>... User Unknown\n")
    assert one(dsn(fields + "X-PowerMTA-BounceCategory: bad-mailbox")) == ("reader@example.org", "userunknown", "hard")
    assert one(dsn(fields + "X-PowerMTA-BounceCategory: policy-related"))[2] == "soft"


def test_verizons_mms_gateway_no_valid_recipients_is_hard():
    body = "Message could not be delivered to mobile.\nError: No valid recipients for this MM\n"
    raw = raw_mail("From: MMSC NDR Administrator <sysadmin@m01.vzwpix.com>\nSubject: Undeliverable Message",
                   body + "To: 5550100@vzwpix.com\n")
    assert one(raw) == ("5550100@vzwpix.com", "userunknown", "hard")
    other = raw.replace(b"sysadmin@m01.vzwpix.com", b"sysadmin@mms.example.net")
    assert one(other)[2] == "soft"


def test_hotmails_mailbox_unavailable_is_hard_from_hotmail_only():
    fields = ("Final-Recipient: rfc822;reader@example.org\nAction: failed\nStatus: 5.5.0\n"
              "Diagnostic-Code: smtp;550 Requested action not taken: mailbox unavailable (-0000000022)")
    assert one(dsn(fields, reporting="dns;BAY004-MC1.hotmail.com"))[1:] == ("userunknown", "hard")
    assert one(dsn(fields))[2] == "soft"


@pytest.mark.parametrize("recipient,remote,reply,klass", [
    # au (KDDI): "<address>: User unknown" is its missing mailbox, "550 : User unknown" its filter.
    ("reader@ezweb.ne.jp", "lsean.ezweb.ne.jp", "550 <reader@ezweb.ne.jp>: User unknown", "hard"),
    ("reader@ezweb.ne.jp", "lsean.ezweb.ne.jp", "550 : User unknown", "soft"),
    ("reader@example.jp", "mx.example.jp", "550 <reader@example.jp>: User unknown", "soft"),
    # Yahoo Inc.: "dd This user doesn't have a yahoo.com account".
    ("reader@yahoo.com", "mta6.am0.yahoodns.net",
     "554 delivery error: dd This user doesn't have a yahoo.com account (reader@yahoo.com) [0]", "hard"),
    ("reader@example.jp", "mx.example.jp",
     "554 delivery error: dd This user doesn't have a example.jp account (reader@example.jp) [0]", "soft"),
    # Orange / La Poste: error code 416 or 418 at the end of the reply.
    ("reader@laposte.net", "smtpz4.laposte.net",
     "550 5.5.0 Adresse destinataire invalide. Invalid recipient. LPN007_416", "hard"),
    ("reader@laposte.net", "smtpz4.laposte.net",
     "550 5.5.0 Adresse destinataire invalide. Invalid recipient. LPN007_510", "soft"),
])
def test_a_remote_hosts_own_wording_for_a_missing_mailbox_is_hard(recipient, remote, reply, klass):
    """Remote hosts whose replies Sisimai reads with a per-host table (Rhost::KDDI, YahooInc,
    FrancePTT), recognised by the remote host or the recipient's domain."""
    raw = dsn(f"Final-Recipient: rfc822; {recipient}\nAction: failed\nStatus: 5.0.0\n"
              f"Remote-MTA: dns; {remote}\nDiagnostic-Code: smtp; {reply}", to=recipient)
    assert one(raw)[2] == klass
