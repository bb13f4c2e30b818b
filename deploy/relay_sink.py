"""A local SMTP relay sink for `./dev up`: accepts every mail and files it in a Maildir.

Stands in for the outgoing relay (Postfix, an ESP's SMTP endpoint) on a developer machine:
Flexmail sends over real SMTP (``FLEXMAIL_MAIL_URL=smtp://127.0.0.1:2525``) and nothing
leaves the machine. Read the mail with any Maildir reader or ``ls <maildir>/new``.

    python deploy/relay_sink.py --port 2525 --maildir instance/dev/relay
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--maildir", required=True)
    args = parser.parse_args()
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd would log addresses at INFO
    controller = Controller(Mailbox(args.maildir), hostname=args.host, port=args.port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    controller.start()
    print(f"relay sink: listening on {args.host}:{args.port}, filing mail in {args.maildir}", flush=True)
    try:
        stop.wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
