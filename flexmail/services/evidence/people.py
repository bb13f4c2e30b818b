"""Data-subject access (GDPR Art. 15/20): everything an account holds about one address."""

from __future__ import annotations

from sqlalchemy import or_, select

from flexmail.clock import iso, now
from flexmail.extensions import db
from flexmail.models import OutboxMessage, Subscription, Suppression
from flexmail.services.evidence import audit, proof
from flexmail.services.marketer.accounts import Principal
from flexmail.services.platform.context import hash_address, parse_address


def access_report(principal: Principal, email: str) -> dict:
    """A machine-readable report of the address's data in the caller's account.

    Platform-wide suppressions are named only as such (their details belong to the
    operator). The keyed hash of the address is not in the report: whoever holds a copy of
    the hashes could use it as an oracle. The request is written to the audit log.
    """
    address = parse_address(email)
    addr_hash = hash_address(address)
    account_id = principal.account_id
    history = proof.consent_history(account_id, address.normalized)
    suppressions = []
    for row in db.session.scalars(select(Suppression).where(
            Suppression.address_hash == addr_hash,
            or_(Suppression.account_id == account_id, Suppression.account_id.is_(None)))
            .order_by(Suppression.id)):
        if row.account_id is None:
            suppressions.append({"scope": "global", "reason": "suppressed (global)"})
        else:
            suppressions.append({"scope": "account", "reason": row.reason, "source": row.source,
                                 "created_at": iso(row.created_at)})
    sub_ids = [s.id for s in db.session.scalars(select(Subscription).where(
        Subscription.account_id == account_id, Subscription.address_hash == addr_hash))]
    # A mail held by the platform-wide cap must look queued to the account (services.consent.flood).
    mails = [{"message_id": m.message_id, "kind": m.kind, "status": "pending" if m.status == "held" else m.status,
              "queued_at": iso(m.created_at), "sent_at": iso(m.sent_at)}
             for m in db.session.scalars(select(OutboxMessage).where(OutboxMessage.subscription_id.in_(sub_ids))
                                         .order_by(OutboxMessage.id))] if sub_ids else []
    audit.record(principal, "people.access", {"person": audit.address_ref(addr_hash),
                                              "subscriptions": len(sub_ids)})
    return {
        "email": address.normalized,
        "account_id": account_id,
        "generated_at": iso(now()),
        "subscriptions": history["subscriptions"],
        "suppressions": suppressions,
        "mails": mails,
        "forwarding": "Forward-to-a-friend stores no address; only campaign counters exist.",
    }
