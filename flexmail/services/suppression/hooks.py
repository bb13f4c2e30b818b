"""ESP event intake: ``POST /hooks/<provider>/<token>``, one endpoint per account and provider.

The URL token (shown once, stored as SHA-256) names the account; the provider's own
signature proves the events:

========== =========================================================================
ses        SNS message signature (SignatureVersion 1: SHA1, 2: SHA256, RSA PKCS#1 v1.5)
           checked with the certificate at ``SigningCertURL``, which must be https on
           ``sns.<region>.amazonaws.com`` (``FLEXMAIL_SNS_HOST_PATTERN``) and end in .pem.
           ``SubscriptionConfirmation``: the signed ``SubscribeURL`` (same host rule) is
           fetched once to confirm. Replay key: ``MessageId``.
sendgrid   ECDSA P-256 / SHA-256 over timestamp + raw body
           (``X-Twilio-Email-Event-Webhook-Signature`` / ``-Timestamp``), with the
           account's verification key. Replay key: ``sg_event_id``.
mailgun    HMAC-SHA256(signing key, timestamp + token) == signature. Replay key: token.
postmark   HTTP basic auth ``user:password`` set on the endpoint (Postmark signs
           nothing). Replay key: the event's ``ID`` (or record type + message + address).
========== =========================================================================

Events older than ``FLEXMAIL_HOOK_MAX_AGE`` seconds (SES, SendGrid, Mailgun: their signed
timestamp) are refused as stale; a request whose events were all taken before is refused
as replayed. A refused request changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import secrets
import urllib.request
from urllib.parse import urlparse

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from sqlalchemy import select

from flexmail.clock import now
from flexmail.domain.bounces import Report, esp
from flexmail.extensions import db
from flexmail.models import HookEndpoint, HookEventSeen
from flexmail.services.platform.context import setting
from flexmail.services.platform.errors import FlexmailError, NotFound, ValidationFailed
from flexmail.services.platform.unit_of_work import unit_of_work
from flexmail.services.suppression.bounces import apply_report

log = logging.getLogger(__name__)

PROVIDERS = ("ses", "sendgrid", "mailgun", "postmark")
#: SNS signing certificates by URL (they rotate rarely; tests put a locally made one here).
SNS_CERTIFICATES: dict[str, bytes] = {}


class HookRefused(FlexmailError):
    """Unsigned, badly signed or stale: nothing was done."""

    code = "unauthorized"
    status = 401


class HookReplayed(FlexmailError):
    code = "replayed"
    status = 409


class BadEvent(FlexmailError):
    code = "bad_request"
    status = 400


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_endpoint(account_id: int, *, provider: str, secret: str | None = None,
                    topic_arns: list[str] | None = None) -> tuple[HookEndpoint, str]:
    """A new endpoint and its URL token (shown once). ``secret``: Mailgun's signing key,
    SendGrid's verification key (base64 DER or PEM), Postmark's ``user:password``."""
    if provider not in PROVIDERS:
        raise ValidationFailed("Unknown provider.", fields={"provider": [f"one of {', '.join(PROVIDERS)}"]})
    if provider != "ses" and not secret:
        raise ValidationFailed("This provider needs a secret.", fields={"secret": ["required for " + provider]})
    if provider == "sendgrid":
        try:
            _sendgrid_key(secret)
        except ValueError:
            raise ValidationFailed("Not an EC public key.", fields={"secret": ["a P-256 public key"]}) from None
    if provider == "postmark" and ":" not in secret:
        raise ValidationFailed("Postmark needs user:password.", fields={"secret": ["user:password"]})
    token = secrets.token_urlsafe(24)
    with unit_of_work() as uow:
        row = HookEndpoint(account_id=account_id, provider=provider, token_hash=_token_hash(token), secret=secret,
                           options={"topic_arns": list(topic_arns or [])})
        uow.session.add(row)
        uow.session.flush()
    return row, token


def list_endpoints(account_id: int) -> list[HookEndpoint]:
    return list(db.session.scalars(select(HookEndpoint).where(HookEndpoint.account_id == account_id)
                                   .order_by(HookEndpoint.id)))


def delete_endpoint(account_id: int, endpoint_id: int) -> None:
    with unit_of_work() as uow:
        row = uow.session.get(HookEndpoint, endpoint_id)
        if row is None or row.account_id != account_id:
            raise NotFound("No such hook endpoint.")
        uow.session.execute(HookEventSeen.__table__.delete().where(HookEventSeen.endpoint_id == row.id))
        uow.session.delete(row)


def receive(provider: str, token: str, *, body: bytes, headers, authorization=None) -> dict:
    """Verify and apply one ESP request; returns counts. Raises ``HookRefused`` (401),
    ``HookReplayed`` (409), ``BadEvent`` (400) or ``NotFound`` (404) and then changed nothing."""
    endpoint = db.session.scalar(select(HookEndpoint).where(HookEndpoint.token_hash == _token_hash(token),
                                                            HookEndpoint.provider == provider))
    if endpoint is None:
        raise NotFound("No such hook endpoint.")
    verify = {"ses": _ses, "sendgrid": _sendgrid, "mailgun": _mailgun, "postmark": _postmark}[provider]
    items, extra = verify(endpoint, body, headers, authorization)
    at = now()
    applied = replayed = results = 0
    with unit_of_work() as uow:
        for key, report in items:
            seen = uow.session.scalar(select(HookEventSeen.id).where(HookEventSeen.endpoint_id == endpoint.id,
                                                                     HookEventSeen.event_key == key[:128]))
            if seen is not None:
                replayed += 1
                continue
            uow.session.add(HookEventSeen(endpoint_id=endpoint.id, event_key=key[:128], at=at))
            if report is not None:
                outcome = apply_report(uow.session, report, at=at, account_id=endpoint.account_id)
                results += sum(outcome.decisions.values())
            applied += 1
        if items and replayed == len(items):
            raise HookReplayed("These events were received before.")
    log.info("hook %s endpoint %s: %d event(s), %d replayed, %d result(s)", provider, endpoint.id, applied,
             replayed, results)
    return {"events": applied, "replayed": replayed, "results": results, **extra}


def _json(body: bytes):
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadEvent("The body is not JSON.") from None


def _fresh(timestamp: float) -> None:
    if abs(now().timestamp() - timestamp) > int(setting("HOOK_MAX_AGE")):
        raise HookRefused("The event is stale.")


def _one(result) -> Report | None:
    return Report("esp", (result,), result.message_id) if result is not None and result.recipient else None


# --- Mailgun ---------------------------------------------------------------------------------

def _mailgun(endpoint, body, headers, authorization):
    data = _json(body)
    signature = data.get("signature") if isinstance(data, dict) else None
    if not isinstance(signature, dict) or not all(isinstance(signature.get(k), str | int)
                                                  for k in ("timestamp", "token", "signature")):
        raise HookRefused("The event is not signed.")
    timestamp, token = str(signature["timestamp"]), str(signature["token"])
    expected = hmac.new(endpoint.secret.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, str(signature["signature"])):
        raise HookRefused("Bad signature.")
    try:
        _fresh(float(timestamp))
    except ValueError:
        raise HookRefused("Bad timestamp.") from None
    event = data.get("event-data")
    if not isinstance(event, dict):
        raise BadEvent("No event-data.")
    return [(f"token:{token}", _one(esp.mailgun(event)))], {}


# --- SendGrid --------------------------------------------------------------------------------

def _sendgrid_key(secret: str):
    text = secret.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode())
    else:
        try:
            key = serialization.load_der_public_key(base64.b64decode(text))
        except (binascii.Error, ValueError) as exc:
            raise ValueError("not a key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not an EC key")
    return key


def _sendgrid(endpoint, body, headers, authorization):
    signature = headers.get("X-Twilio-Email-Event-Webhook-Signature")
    timestamp = headers.get("X-Twilio-Email-Event-Webhook-Timestamp")
    if not signature or not timestamp:
        raise HookRefused("The events are not signed.")
    try:
        _sendgrid_key(endpoint.secret).verify(base64.b64decode(signature), timestamp.encode() + body,
                                              ec.ECDSA(hashes.SHA256()))
        _fresh(float(timestamp))
    except (InvalidSignature, binascii.Error, ValueError):
        raise HookRefused("Bad signature.") from None
    events = _json(body)
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise BadEvent("Expected a JSON array of events.")
    return [(f"sg:{e.get('sg_event_id') or hashlib.sha256(json.dumps(e, sort_keys=True).encode()).hexdigest()}",
             _one(esp.sendgrid(e))) for e in events], {}


# --- Postmark --------------------------------------------------------------------------------

def _postmark(endpoint, body, headers, authorization):
    user, _, password = endpoint.secret.partition(":")
    if authorization is None or authorization.type != "basic" or not (
            hmac.compare_digest((authorization.username or "").encode(), user.encode())
            & hmac.compare_digest((authorization.password or "").encode(), password.encode())):
        raise HookRefused("Basic authentication required.")
    event = _json(body)
    if not isinstance(event, dict):
        raise BadEvent("Expected one JSON event.")
    key = event.get("ID") or ":".join(str(event.get(k)) for k in ("RecordType", "MessageID", "Email", "Recipient"))
    return [(f"pm:{key}", _one(esp.postmark(event)))], {}


# --- Amazon SES through SNS ------------------------------------------------------------------

SNS_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}


def sns_string_to_sign(message: dict) -> bytes:
    """The canonical text SNS signs: ``name\\nvalue\\n`` for each signed field present, in
    this order (Subject only when the notification has one)."""
    lines = []
    for name in SNS_FIELDS[message["Type"]]:
        if name == "Subject" and message.get("Subject") is None:
            continue
        lines += [name, str(message.get(name, ""))]
    return ("\n".join(lines) + "\n").encode()


def sns_url_allowed(url: str, *, certificate: bool = False) -> bool:
    """https (or, for SubscribeURL only, a scheme tests allow) on the SNS host pattern."""
    parts = urlparse(url or "")
    schemes = ("https",) if certificate else tuple(s.strip() for s in setting("SNS_URL_SCHEMES").split(","))
    host_ok = re.match(setting("SNS_HOST_PATTERN"), parts.hostname or "") is not None
    return parts.scheme in schemes and host_ok and (not certificate or parts.path.endswith(".pem"))


def _certificate(url: str):
    pem = SNS_CERTIFICATES.get(url)
    if pem is None:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310  (https, SNS host: checked)
            pem = response.read(64 * 1024)
        SNS_CERTIFICATES[url] = pem
    return x509.load_pem_x509_certificate(pem)


def _ses(endpoint, body, headers, authorization):
    message = _json(body)
    if not isinstance(message, dict) or message.get("Type") not in SNS_FIELDS:
        raise BadEvent("Not an SNS message.")
    if not all(isinstance(message.get(k), str) for k in ("Signature", "SigningCertURL", "MessageId", "Timestamp")):
        raise HookRefused("The message is not signed.")
    if not sns_url_allowed(message["SigningCertURL"], certificate=True):
        raise HookRefused("The signing certificate is not an SNS one.")
    # SignatureVersion 1 is SHA1, still what SNS uses unless the topic asks for 2.
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(str(message.get("SignatureVersion")))  # noqa: S303
    if algorithm is None:
        raise HookRefused("Unknown signature version.")
    try:
        certificate = _certificate(message["SigningCertURL"])
        certificate.public_key().verify(base64.b64decode(message["Signature"]), sns_string_to_sign(message),
                                        padding.PKCS1v15(), algorithm)
        sent = dt.datetime.fromisoformat(message["Timestamp"].replace("Z", "+00:00"))
    except (InvalidSignature, binascii.Error, ValueError, TypeError, OSError):
        raise HookRefused("Bad signature.") from None
    _fresh(sent.timestamp())
    topics = (endpoint.options or {}).get("topic_arns") or []
    if topics and message.get("TopicArn") not in topics:
        raise HookRefused("Not a topic of this endpoint.")
    key = f"sns:{message['MessageId']}"
    if message["Type"] != "Notification":
        if message["Type"] == "SubscriptionConfirmation":
            url = message.get("SubscribeURL") or ""
            if not sns_url_allowed(url):
                raise HookRefused("SubscribeURL is not an SNS URL.")
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310  (checked above)
                response.read(64 * 1024)
            return [(key, None)], {"confirmed": True}
        return [(key, None)], {}
    inner = message.get("Message")
    try:
        notification = json.loads(inner) if isinstance(inner, str) else None
    except ValueError:
        notification = None
    if not isinstance(notification, dict):
        raise BadEvent("The SNS Message is not an SES notification.")
    report = esp.ses(notification)
    return [(key, report if report.results else None)], {}
