"""ESP event intake at /hooks/<provider>/<token>: real signatures made here with the
providers' schemes (HMAC, ECDSA P-256, basic auth, SNS RSA certificates made locally),
refused when unsigned, badly signed, stale or replayed, and then nothing changes.

What is not real: the SNS signing certificate is made here and put in the certificate
cache under an https SNS URL (no HTTPS fetch from AWS in tests); the SubscribeURL is
fetched for real over HTTP from a local server, allowed by a test override of the SNS
host pattern and schemes."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.server
import json
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from tests.suppression_support import check, events

MAILGUN_KEY = "key-mailgun-signing-0123456789"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-flexmailtest.pem"


@pytest.fixture
def reader(client, account, create_list, subscribe):
    """A subscriber whose address the ESP events name: its subscription id."""
    response = subscribe(create_list()["id"], email="reader@example.com")
    assert response.status_code == 202
    return response.json["subscription"]["id"]


def endpoint(client, account, provider, secret=None, **extra) -> str:
    response = client.post("/api/v1/hooks", json={"provider": provider, "secret": secret, **extra},
                           headers=account.headers)
    assert response.status_code == 201, response.json
    return response.json["path"]


# --- Mailgun -------------------------------------------------------------------------------

def mailgun_body(event: dict, *, key=MAILGUN_KEY, timestamp=None, token="tok-1") -> bytes:
    timestamp = str(int(timestamp if timestamp is not None else time.time()))
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return json.dumps({"signature": {"timestamp": timestamp, "token": token, "signature": signature},
                       "event-data": event}).encode()


MAILGUN_FAILED = {"event": "failed", "severity": "permanent", "recipient": "reader@example.com", "reason": "bounce",
                  "delivery-status": {"code": 550, "enhanced-code": "5.1.1", "message": "No such user"},
                  "message": {"headers": {"message-id": "elsewhere-1@mg.example"}}}


def test_mailgun_signed_event_suppresses_bad_signature_and_replay_are_refused(client, account, reader):
    """A correctly signed permanent failure suppresses; a wrong key, a stale timestamp and the
    same token again are refused with nothing changed."""
    path = endpoint(client, account, "mailgun", MAILGUN_KEY)
    bad = client.post(path, data=mailgun_body(MAILGUN_FAILED, key="wrong"), content_type="application/json")
    assert bad.status_code == 401 and bad.json["error"]["code"] == "unauthorized"
    stale = client.post(path, data=mailgun_body(MAILGUN_FAILED, timestamp=time.time() - 3600),
                        content_type="application/json")
    assert stale.status_code == 401
    unsigned = client.post(path, json={"event-data": MAILGUN_FAILED})
    assert unsigned.status_code == 401
    assert not check(client, account, ["reader@example.com"])[0]["suppressed"]
    good = client.post(path, data=mailgun_body(MAILGUN_FAILED), content_type="application/json")
    assert good.status_code == 200 and good.json["events"] == 1
    assert check(client, account, ["reader@example.com"])[0]["reason"] == "hard_bounce"
    replay = client.post(path, data=mailgun_body(MAILGUN_FAILED), content_type="application/json")
    assert replay.status_code == 409 and replay.json["error"]["code"] == "replayed"
    (event,) = events(client, account, reader, "bounced")
    assert event["source"] == "esp" and event["details"]["report"] == "esp:mailgun"


def test_unknown_token_and_wrong_provider_are_not_found(client, account):
    """A token that names no endpoint (or another provider's) is a JSON 404, not a redirect."""
    path = endpoint(client, account, "mailgun", MAILGUN_KEY)
    assert client.post("/hooks/mailgun/nope", data=b"{}").status_code == 404
    wrong = client.post(path.replace("/mailgun/", "/postmark/"), data=b"{}")
    assert wrong.status_code == 404 and wrong.json["error"]["code"] == "not_found"


# --- SendGrid ------------------------------------------------------------------------------

def test_sendgrid_ecdsa_signed_events_apply_bad_signature_and_replay_refused(client, account, reader):
    """Events signed with the account's P-256 key (timestamp + body) apply: a spam report
    suppresses as a complaint; a body signed by another key, or sent again, changes nothing."""
    private = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    path = endpoint(client, account, "sendgrid", public)
    body = json.dumps([{"email": "reader@example.com", "event": "spamreport", "sg_event_id": "ev-1",
                        "timestamp": int(time.time())}]).encode()

    def signed(key, data, timestamp=None):
        ts = str(int(timestamp if timestamp is not None else time.time()))
        signature = base64.b64encode(key.sign(ts.encode() + data, ec.ECDSA(hashes.SHA256()))).decode()
        return {"X-Twilio-Email-Event-Webhook-Signature": signature, "X-Twilio-Email-Event-Webhook-Timestamp": ts}

    other = ec.generate_private_key(ec.SECP256R1())
    assert client.post(path, data=body, headers=signed(other, body), content_type="application/json").status_code == 401
    assert client.post(path, data=body, content_type="application/json").status_code == 401
    tampered = body.replace(b"spamreport", b"unsubscribe")
    assert client.post(path, data=tampered, headers=signed(private, body),
                       content_type="application/json").status_code == 401
    assert client.post(path, data=body, headers=signed(private, body, time.time() - 3600),
                       content_type="application/json").status_code == 401
    assert not check(client, account, ["reader@example.com"])[0]["suppressed"]
    good = client.post(path, data=body, headers=signed(private, body), content_type="application/json")
    assert good.status_code == 200, good.json
    assert check(client, account, ["reader@example.com"])[0]["reason"] == "complaint"
    replay = client.post(path, data=body, headers=signed(private, body), content_type="application/json")
    assert replay.status_code == 409


# --- Postmark ------------------------------------------------------------------------------

def test_postmark_basic_auth_hard_bounce_and_replay(client, account, reader):
    """With the endpoint's user:password a HardBounce suppresses; wrong credentials and the same
    event ID again are refused."""
    path = endpoint(client, account, "postmark", "pm-user:pm-secret")
    bounce = {"RecordType": "Bounce", "ID": 4323372036854775807, "Type": "HardBounce", "TypeCode": 1,
              "Email": "reader@example.com", "Description": "The server was unable to deliver your message",
              "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist."}

    def auth(user, password):
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    assert client.post(path, json=bounce, headers=auth("pm-user", "nope")).status_code == 401
    assert client.post(path, json=bounce).status_code == 401
    assert not check(client, account, ["reader@example.com"])[0]["suppressed"]
    good = client.post(path, json=bounce, headers=auth("pm-user", "pm-secret"))
    assert good.status_code == 200, good.json
    assert check(client, account, ["reader@example.com"])[0]["reason"] == "hard_bounce"
    assert client.post(path, json=bounce, headers=auth("pm-user", "pm-secret")).status_code == 409


# --- Amazon SES through SNS ----------------------------------------------------------------

@pytest.fixture(scope="module")
def sns_key():
    """An RSA key and a self-signed certificate standing in for SNS's signing certificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def sns_cert(sns_key):
    from flexmail.services.suppression import hooks

    key, pem = sns_key
    hooks.SNS_CERTIFICATES[CERT_URL] = pem
    yield key
    hooks.SNS_CERTIFICATES.pop(CERT_URL, None)


def sns_message(key, kind, *, message, cert_url=CERT_URL, message_id="sns-1", version="1", extra=None) -> bytes:
    from flexmail.services.suppression.hooks import sns_string_to_sign

    body = {"Type": kind, "MessageId": message_id, "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-events",
            "Message": message, "Timestamp": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
            "SignatureVersion": version, "SigningCertURL": cert_url, **(extra or {})}
    if kind == "Notification":
        body["Subject"] = None
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303  (SNS version 1 is SHA1)
    body["Signature"] = base64.b64encode(key.sign(sns_string_to_sign(body), padding.PKCS1v15(), algorithm)).decode()
    return json.dumps(body).encode()


SES_BOUNCE = json.dumps({
    "notificationType": "Bounce",
    "bounce": {"bounceType": "Permanent", "bounceSubType": "General", "bouncedRecipients": [
        {"emailAddress": "reader@example.com", "action": "failed", "status": "5.1.1",
         "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]},
    "mail": {"messageId": "0100-ses", "commonHeaders": {"messageId": "<elsewhere-2@ses.example>"}},
})


def test_ses_signed_notification_suppresses_forged_and_replayed_are_refused(client, account, reader, sns_cert,
                                                                             sns_key):
    """An SNS notification signed by the certificate at an SNS URL suppresses; a signature by
    another key, a certificate URL off the SNS hosts, and the same MessageId again are refused."""
    path = endpoint(client, account, "ses")
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert client.post(path, data=sns_message(forger, "Notification", message=SES_BOUNCE)).status_code == 401
    evil = sns_message(sns_cert, "Notification", message=SES_BOUNCE,
                       cert_url="https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem")
    assert client.post(path, data=evil).status_code == 401
    assert not check(client, account, ["reader@example.com"])[0]["suppressed"]
    good = client.post(path, data=sns_message(sns_cert, "Notification", message=SES_BOUNCE, version="2"))
    assert good.status_code == 200, good.json
    assert check(client, account, ["reader@example.com"])[0]["reason"] == "hard_bounce"
    again = client.post(path, data=sns_message(sns_cert, "Notification", message=SES_BOUNCE, version="2"))
    assert again.status_code == 409


def test_ses_subscription_confirmation_fetches_the_signed_subscribe_url(app, client, account, sns_cert):
    """A signed SubscriptionConfirmation is confirmed by fetching its SubscribeURL (a local HTTP
    server here, allowed by the test's SNS host override); an unsigned one fetches nothing."""
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<ConfirmSubscriptionResponse/>")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.config.update(SNS_HOST_PATTERN=r"^(sns\.[a-z0-9-]+\.amazonaws\.com|127\.0\.0\.1)$",
                      SNS_URL_SCHEMES="http,https")
    try:
        path = endpoint(client, account, "ses")
        url = f"http://127.0.0.1:{server.server_port}/?Action=ConfirmSubscription&Token=abc"
        unsigned = json.loads(sns_message(sns_cert, "SubscriptionConfirmation", message="confirm",
                                          extra={"SubscribeURL": url, "Token": "abc"}))
        unsigned["Signature"] = base64.b64encode(b"x" * 256).decode()
        assert client.post(path, data=json.dumps(unsigned)).status_code == 401
        assert hits == []
        good = client.post(path, data=sns_message(sns_cert, "SubscriptionConfirmation", message="confirm",
                                                   extra={"SubscribeURL": url, "Token": "abc"}))
        assert good.status_code == 200 and good.json["confirmed"] is True
        assert hits == ["/?Action=ConfirmSubscription&Token=abc"]
    finally:
        server.shutdown()
        server.server_close()
