"""Helpers for the suppression and erasure tests: API calls, a worker started on demand,
hosted-form posts, and building RFC 3464 / RFC 5965 reports with the email package."""

from __future__ import annotations

import re
from contextlib import contextmanager
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import dramatiq

from tests.conftest import BACKEND


def add(client, acct, **body):
    """POST /api/v1/suppressions; returns the response."""
    body.setdefault("reason", "manual")
    return client.post("/api/v1/suppressions", json=body, headers=acct.headers)


def check(client, acct, emails) -> list[dict]:
    response = client.post("/api/v1/suppressions/check", json={"emails": emails}, headers=acct.headers)
    assert response.status_code == 200, response.json
    return response.json["results"]


def is_blocked(client, acct, email) -> bool:
    return check(client, acct, [email])[0]["suppressed"]


def events(client, acct, subscription_id, kind=None) -> list[dict]:
    response = client.get(f"/api/v1/subscriptions/{subscription_id}", headers=acct.headers)
    assert response.status_code == 200, response.json
    return [e for e in response.json["events"] if kind is None or e["type"] == kind]


def form_post(client, list_id, email, *, remote_addr="192.0.2.44", user_agent="Browser/1.0"):
    """Submit the hosted signup form as a person's browser does (CSRF token from the page)."""
    page = client.get(f"/subscribe/{list_id}")
    token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data).group(1).decode()
    return client.post(f"/subscribe/{list_id}", data={"csrf_token": token, "email": email, "website": ""},
                       headers={"User-Agent": user_agent}, environ_base={"REMOTE_ADDR": remote_addr})


@contextmanager
def worker_for(app):
    """A worker started only now: mail queued before it starts waits for it (no race with
    whatever the test does between queueing and sending)."""
    broker = app.extensions["dramatiq"]
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        yield
        for queue in broker.get_declared_queues():
            if BACKEND == "postgres":
                broker.join(queue, timeout=30_000)
            else:
                broker.join(queue, fail_fast=True, timeout=30_000)
        worker.join()
    finally:
        worker.stop()


def drain_later(app):
    with worker_for(app):
        pass


# --- reports ------------------------------------------------------------------------------------

def original_message(to="Reader@example.com", message_id="<abc123@flexmail.test>") -> Message:
    mail = MIMEText("Hello, the weekly news.")
    mail["From"] = "Acme News <news@acme.example>"
    mail["To"] = to
    mail["Subject"] = "Weekly News"
    mail["Message-ID"] = message_id
    return mail


def _report(report_type: str, human: str, machine: MIMEBase, returned: MIMEBase) -> bytes:
    report = MIMEMultipart("report", report_type=report_type)
    report["From"] = "Mail Delivery System <MAILER-DAEMON@mx.example.net>"
    report["To"] = "bounces@flexmail.test"
    report["Subject"] = "Report"
    report.attach(MIMEText(human))
    report.attach(machine)
    report.attach(returned)
    return report.as_bytes()


def _block(**fields) -> Message:
    block = Message()
    for name, value in fields.items():
        block[name.replace("_", "-")] = value
    return block


def dsn(recipients, *, message_id="<abc123@flexmail.test>", headers_only=True, original_recipient=None) -> bytes:
    """An RFC 3464 delivery status notification: ``recipients`` is [(address, action, status)]."""
    blocks = [_block(Reporting_MTA="dns; mx.example.net", Arrival_Date="Mon, 23 Nov 2026 10:00:00 +0000")]
    for address, action, status in recipients:
        fields = {"Final_Recipient": f"rfc822; {address}", "Action": action, "Status": status,
                  "Diagnostic_Code": f"smtp; {status} mailbox says no"}
        if original_recipient:
            fields["Original_Recipient"] = f"rfc822;{original_recipient}"
        blocks.append(_block(**fields))
    status_part = MIMEBase("message", "delivery-status")
    status_part.set_payload(blocks)
    original = original_message(message_id=message_id)
    if headers_only:
        returned = MIMEText("".join(f"{k}: {v}\n" for k, v in original.items()), "rfc822-headers")
    else:
        returned = MIMEMessage(original)
    return _report("delivery-status", "Your message could not be delivered.", status_part, returned)


def arf(*, feedback_type="abuse", original_rcpt_to=None, to="Reader@example.com",
        message_id="<abc123@flexmail.test>") -> bytes:
    """An RFC 5965 feedback report about one returned message."""
    fields = {"Feedback_Type": feedback_type, "User_Agent": "ExampleFBL/1.0", "Version": "1",
              "Original_Mail_From": "<bounces@flexmail.test>", "Arrival_Date": "Mon, 23 Nov 2026 10:00:00 +0000",
              "Reported_Domain": "acme.example"}
    if original_rcpt_to:
        fields["Original_Rcpt_To"] = original_rcpt_to
    feedback = MIMEBase("message", "feedback-report")
    feedback.set_payload([_block(**fields)])
    return _report("feedback-report", "This is an abuse report.", feedback,
                   MIMEMessage(original_message(to=to, message_id=message_id)))
