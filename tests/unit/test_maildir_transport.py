"""The Maildir transport (the embedded default's mail out) under concurrent worker threads."""

from __future__ import annotations

import threading

from flexmail.mail.transports import MaildirTransport


def test_threads_delivering_the_first_mails_into_a_new_maildir_all_succeed(tmp_path):
    """Several worker threads sending at once into a Maildir that does not exist yet never fail
    (mailbox.Maildir creates its folders and names files without a lock of its own)."""
    errors, delivered = [], 0
    for round_ in range(40):
        transport = MaildirTransport(str(tmp_path / f"mail{round_}"))
        start = threading.Barrier(4)

        def send(transport=transport, start=start):
            start.wait()
            try:
                transport.send_bytes(b"Subject: x\r\n\r\nbody\r\n", sender="bounces@flexmail.test", recipients=[])
            except OSError as exc:
                errors.append(type(exc).__name__)

        threads = [threading.Thread(target=send) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        delivered += len(list((tmp_path / f"mail{round_}" / "new").iterdir()))
    assert errors == [] and delivered == 160
