"""Small helpers shared by tests."""

from __future__ import annotations

import re
import socket
from contextlib import contextmanager


def link_from(message, path: str) -> str:
    """The first http(s) link to ``/path/`` in a message's text part."""
    body = message.get_body(("plain",)).get_content()
    match = re.search(rf"https?://\S+/{path}/\S+", body)
    assert match, f"no /{path}/ link in mail"
    return match.group(0)


def token_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def confirmation_links(message) -> tuple[str, str]:
    """(confirm URL, "this was not me" URL) from a confirmation mail."""
    return link_from(message, "confirm"), link_from(message, "not-me")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@contextmanager
def smtp_server(handler):
    """Run an aiosmtpd ``handler`` on a free port; ``handler.url`` is its smtp:// URL."""
    from aiosmtpd.controller import Controller

    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()
    handler.url = f"smtp://127.0.0.1:{port}"
    try:
        yield handler
    finally:
        controller.stop()
