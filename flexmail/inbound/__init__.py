"""Mail we receive: unsubscribe requests sent to the mailto address of ``List-Unsubscribe``.

``smtp`` is a small SMTP listener (aiosmtpd) for ``flask inbound serve``; ``mailto``
decides what a received message does, for the listener and for ``flask inbound deliver``
(one message on stdin, e.g. from a Postfix ``pipe`` transport).
"""
