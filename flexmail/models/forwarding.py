"""Forward-to-a-friend bookkeeping: daily counts for the abuse limits and the friends' opt-outs.

No table here (nor anywhere) holds the address of a forwarder or a friend.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from flexmail.clock import now
from flexmail.extensions import db
from flexmail.models.types import UTCDateTime


class ForwardQuota(db.Model):
    """How often one recipient's forward link (subscription + campaign) was used on a UTC day."""

    __tablename__ = "forward_quotas"

    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    forwards: Mapped[int] = mapped_column(default=0, server_default="0")


class CampaignForwardDay(db.Model):
    """Forwards and forwarded recipients of a campaign on a UTC day (the per-campaign cap)."""

    __tablename__ = "campaign_forward_days"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    forwards: Mapped[int] = mapped_column(default=0, server_default="0")
    recipients: Mapped[int] = mapped_column(default=0, server_default="0")


class ForwardOptOut(db.Model):
    """Someone who asked never to receive forwards through this service, by keyed hash only.

    Kept apart from ``suppressions`` on purpose: a suppression blocks every mail of an
    account (or of everyone), including lists the person may later join themselves; this
    entry blocks forwards and nothing else.
    """

    __tablename__ = "forward_opt_outs"

    #: Keyed HMAC of the case-folded address, as in ``suppressions.address_hash``.
    address_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
