"""The fast Postfix pipe: hand one message to the running service, without starting the app.

    python /srv/flexmail/flexmail/inbound/pipe.py [-r RECIPIENT ...] < message

Run it as a file (not ``-m``): it imports the standard library only, so a call costs a
Python start and one HTTP request to ``POST /internal/inbound`` of the running service
(``FLEXMAIL_INBOUND_URL``, default ``http://127.0.0.1:8000/internal/inbound``) with
``Authorization: Bearer $FLEXMAIL_INBOUND_TOKEN``. The service does exactly what
``flask inbound deliver`` does. Exit codes are the same (sysexits): 0 done, 65 no message,
67 not addressed to us, 75 temporary failure (the service is down or busy: Postfix keeps
the message and retries).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

EX_OK, EX_DATAERR, EX_NOUSER, EX_TEMPFAIL = 0, 65, 67, 75
DEFAULT_URL = "http://127.0.0.1:8000/internal/inbound"


def deliver(data: bytes, recipients: list[str], *, url: str, token: str, timeout: float = 60) -> int:
    """POST the message; the exit code for the MTA."""
    if not data.strip():
        return EX_DATAERR
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        return EX_TEMPFAIL
    query = urllib.parse.urlencode([("recipient", r) for r in recipients])
    request = urllib.request.Request(f"{url}?{query}" if query else url, data=data, method="POST", headers={  # noqa: S310
        "Authorization": f"Bearer {token}", "Content-Type": "message/rfc822"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310  (http(s) checked)
            response.read()
            return EX_OK
    except urllib.error.HTTPError as exc:
        try:
            code = json.loads(exc.read() or b"{}").get("error", {}).get("code")
        except ValueError:
            code = None
        if code == "not_ours":
            return EX_NOUSER
        if code == "no_message":
            return EX_DATAERR
        return EX_TEMPFAIL
    except (OSError, ValueError):
        return EX_TEMPFAIL


def main(argv: list[str]) -> int:
    recipients, args = [], list(argv)
    while args:
        flag = args.pop(0)
        if flag in ("-r", "--recipient") and args:
            recipients.append(args.pop(0))
        else:
            print(f"inbound pipe: unknown argument {flag!r}", file=sys.stderr)
            return EX_TEMPFAIL
    token = os.environ.get("FLEXMAIL_INBOUND_TOKEN")
    if not token:
        print("inbound pipe: FLEXMAIL_INBOUND_TOKEN is not set", file=sys.stderr)
        return EX_TEMPFAIL
    code = deliver(sys.stdin.buffer.read(), recipients, url=os.environ.get("FLEXMAIL_INBOUND_URL", DEFAULT_URL),
                   token=token)
    if code != EX_OK:
        print(f"inbound pipe: exit {code}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
