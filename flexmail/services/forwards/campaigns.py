"""Campaigns: what a marketer sends, known here for forward counting and the recipient export."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from urllib.parse import urlsplit

from sqlalchemy import select

from flexmail.domain.consent import Status
from flexmail.domain.forwarding import sanitize_html
from flexmail.extensions import db
from flexmail.models import Campaign, Subscription
from flexmail.services.forwards.forwarding import forward_url
from flexmail.services.marketer.lists import get_list
from flexmail.services.optout import unsubscribe
from flexmail.services.platform.context import setting
from flexmail.services.platform.errors import NotFound, ValidationFailed
from flexmail.services.platform.unit_of_work import unit_of_work
from flexmail.services.suppression.suppressions import suppressed_addresses

log = logging.getLogger(__name__)

MAX_SUBJECT = 200
MAX_HTML = 500_000


def create_campaign(account_id: int, *, list_id: int, subject: str, web_url: str | None = None,
                    html: str | None = None) -> Campaign:
    """Register a campaign of one of the account's lists; it needs a web link, HTML, or both.

    The HTML is sanitised here, once, and stored as sanitised: it is what friends see.
    """
    lst = get_list(account_id, list_id)
    subject = (subject or "").strip()
    if not subject or len(subject) > MAX_SUBJECT or any(c in subject for c in "\r\n\0"):
        raise ValidationFailed("Invalid input.", fields={"subject": [
            f"One line of 1 to {MAX_SUBJECT} characters."]})
    web_url = (web_url or "").strip() or None
    if web_url is not None:
        parts = urlsplit(web_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or len(web_url) > 2000 \
                or any(c.isspace() for c in web_url):
            raise ValidationFailed("Invalid input.", fields={"web_url": ["An http(s) URL of at most 2000 characters."]})
    if html is not None:
        if len(html) > MAX_HTML:
            raise ValidationFailed("Invalid input.", fields={"html": [f"At most {MAX_HTML} characters."]})
        html = sanitize_html(html).strip() or None
    if web_url is None and html is None:
        raise ValidationFailed("Invalid input.", fields={"web_url": ["Give web_url or html (or both)."]})
    with unit_of_work() as uow:
        campaign = Campaign(account_id=account_id, list_id=lst.id, subject=subject, web_url=web_url, html=html)
        uow.session.add(campaign)
    log.info("campaign %s created on list %s", campaign.id, lst.id)
    return campaign


def get_campaign(account_id: int, campaign_id: int) -> Campaign:
    """The campaign if it belongs to the account; another tenant's is simply not found."""
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None or campaign.account_id != account_id:
        raise NotFound("No such campaign.")
    return campaign


def _suppressed(account_id: int, emails: list[str]) -> set[str]:
    """Which of a batch's addresses must not be mailed by the account (address, domain and
    platform-wide entries): one query per batch."""
    return suppressed_addresses(account_id, emails)


def campaign_recipients(account_id: int, campaign_id: int) -> Iterator[dict]:
    """The sendable recipients of a campaign, for streaming: checked now, produced lazily.

    Sendable: subscribed on the campaign's list and not suppressed for the account or
    globally. Rows are read in id order in batches (``CAMPAIGN_RECIPIENTS_BATCH``) by keyset,
    so memory stays constant however long the list. Each row carries the per-recipient
    unsubscribe URL, the exact ``List-Unsubscribe``/``List-Unsubscribe-Post`` values and
    the forward URL, all naming this campaign.
    """
    campaign = get_campaign(account_id, campaign_id)
    return _iter_recipients(campaign.account_id, campaign.id, campaign.list_id, setting("CAMPAIGN_RECIPIENTS_BATCH"))


def _iter_recipients(account_id: int, campaign_id: int, list_id: int, batch: int) -> Iterator[dict]:
    after = 0
    while True:
        rows = db.session.execute(
            select(Subscription.id, Subscription.email)
            .where(Subscription.list_id == list_id, Subscription.status == Status.SUBSCRIBED,
                   Subscription.id > after, Subscription.email.is_not(None))
            .order_by(Subscription.id).limit(batch)
        ).all()
        if not rows:
            return
        blocked = _suppressed(account_id, [row.email for row in rows])
        db.session.rollback()  # end the read transaction between batches
        for row in rows:
            if row.email in blocked:
                continue
            links = unsubscribe.link_headers(row.id, campaign_id=campaign_id)
            yield {
                "subscription_id": row.id,
                "email": row.email,
                "unsubscribe_url": links.url,
                "forward_url": forward_url(row.id, campaign_id),
                "list_unsubscribe": links.list_unsubscribe,
                "list_unsubscribe_post": links.list_unsubscribe_post,
            }
        after = rows[-1].id
        if len(rows) < batch:
            return


def campaign_stats(account_id: int, campaign_id: int) -> dict:
    """The forward counts the marketer may see: how often, and to how many friends. Nothing
    about who forwarded or to whom exists to be shown."""
    campaign = get_campaign(account_id, campaign_id)
    db.session.refresh(campaign)  # counters move by UPDATE elsewhere; never serve a stale copy
    return {"forwards": campaign.forwards, "forwarded_recipients": campaign.forwarded_recipients}
