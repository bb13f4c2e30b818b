"""`flask --app app accounts keys ...`: the operator manages any account's API keys.

Secrets are printed once (create, rotate) and stored hashed. Listing never shows them.
"""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from flexmail.clock import iso
from flexmail.services.marketer import api_keys
from flexmail.services.platform.errors import FlexmailError

keys_cli = AppGroup("keys", help="API keys of an account: list, create, rotate, revoke.")


def _json(info: api_keys.KeyInfo) -> dict:
    body = {"id": info.id, "account_id": info.account_id, "name": info.name, "prefix": info.prefix,
            "scopes": info.scopes, "created_at": iso(info.created_at), "last_used_at": iso(info.last_used_at),
            "revoked_at": iso(info.revoked_at), "active": info.active, "rotated_from_id": info.rotated_from_id}
    if info.secret:
        body["api_key"] = info.secret
    return body


def _run(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except FlexmailError as exc:
        raise click.ClickException(exc.message) from None


@keys_cli.command("list")
@click.option("--account", "account_id", type=int, required=True)
@click.option("--all", "include_revoked", is_flag=True, help="Also revoked keys.")
def keys_list(account_id, include_revoked):
    """The account's keys as JSON lines (never the secrets)."""
    for info in _run(api_keys.list_keys, account_id, include_revoked=include_revoked):
        click.echo(json.dumps(_json(info)))


@keys_cli.command("create")
@click.option("--account", "account_id", type=int, required=True)
@click.option("--scopes", default="marketer", show_default=True, help="Comma list of marketer, compliance, admin.")
@click.option("--name", default=None, help="What the key is for.")
def keys_create(account_id, scopes, name):
    """Create a key; prints it (as api_key) once."""
    info = _run(api_keys.create_key, account_id, scopes=scopes.split(","), name=name)
    click.echo(json.dumps(_json(info)))


@keys_cli.command("rotate")
@click.argument("key_id", type=int)
@click.option("--account", "account_id", type=int, required=True)
@click.option("--grace", "grace_seconds", type=int, default=0, show_default=True,
              help="Seconds the old key keeps working.")
def keys_rotate(key_id, account_id, grace_seconds):
    """Replace a key by a new one (same name and scopes); prints the new key once."""
    info = _run(api_keys.rotate_key, account_id, key_id, grace_seconds=grace_seconds)
    click.echo(json.dumps(_json(info)))


@keys_cli.command("revoke")
@click.argument("key_id", type=int)
@click.option("--account", "account_id", type=int, required=True)
def keys_revoke(key_id, account_id):
    """Revoke a key at once (also an account's last admin key)."""
    info = _run(api_keys.revoke_key, account_id, key_id)
    click.echo(json.dumps(_json(info)))
