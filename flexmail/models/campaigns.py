from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flexmail.clock import now
from flexmail.extensions import db
from flexmail.models.types import UTCDateTime


class Campaign(db.Model):
    """A message a marketer sends to a list, known here so forwards of it can be counted.

    Only aggregate forward counts are kept: who forwarded it, and to whom, never is. The
    counters are only ever changed by ``UPDATE ... SET n = n + k`` so concurrent forwards in
    many processes lose no update.
    """

    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint("web_url IS NOT NULL OR html IS NOT NULL", name="has_content"),
        CheckConstraint("forwards >= 0 AND forwarded_recipients >= 0 AND forwards_failed >= 0",
                        name="counts_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    #: The list it goes to; only that list's confirmed subscribers can forward it.
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id"), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    #: The "view in your browser" page of the campaign (http or https).
    web_url: Mapped[str | None] = mapped_column(String(2000))
    #: The campaign's HTML as sanitised on creation (no script, style element, event handler
    #: or non-http(s) link): it is shown to friends in a forward.
    html: Mapped[str | None] = mapped_column(Text)
    #: Forwards that were accepted: a form naming one to five friends (server mode), or a press of
    #: "open my mail program" (client mode, friends unknown to us).
    forwards: Mapped[int] = mapped_column(default=0, server_default="0")
    #: Friends a forward mail was queued for (suppressed friends are not counted; none in client mode).
    forwarded_recipients: Mapped[int] = mapped_column(default=0, server_default="0")
    #: Forward mails dropped after their last delivery attempt failed (not shown to the marketer).
    forwards_failed: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
