"""Command line: `flask --app app accounts|outbox|demo ...` (plus Flask-Migrate's `db`)."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from flexmail.services import accounts, export, lists, outbox, retention
from flexmail.services.errors import FlexmailError

accounts_cli = AppGroup("accounts", help="Marketer accounts and API keys.")
outbox_cli = AppGroup("outbox", help="The transactional outbox.")
proof_cli = AppGroup("proof", help="Consent proof: verify exports.")
retention_cli = AppGroup("retention", help="Retention of personal data and proof.")


@proof_cli.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--head", "head", default=None,
              help="The signed head (JSON text or a file) from GET /api/v1/proof/head, to detect a cut tail.")
def proof_verify(file, head):
    """Verify an export offline: every row's hashes and commitments, order, and its signed manifest."""
    head_document = None
    if head:
        text = Path(head).read_text() if Path(head).exists() else head
        try:
            head_document = json.loads(text)
        except json.JSONDecodeError:
            raise click.UsageError("--head must be the JSON of GET /api/v1/proof/head (text or file)") from None
    with open(file, newline="", encoding="utf-8") as handle:
        check = export.verify_export(handle, head_document=head_document)
    if check.ok:
        click.echo(check.message)
        return
    where = f" at row {check.row}" if check.row else ""
    raise click.ClickException(f"FAILED{where}: {check.message}")


@retention_cli.command("run")
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="Apply the rules as if it were this UTC date (default: now).")
def retention_run(as_of):
    """Delete unconfirmed signups, truncate old IPs, delete proof of long-withdrawn consent."""
    when = as_of.replace(tzinfo=dt.UTC) if as_of else None
    counts = retention.run_retention(as_of=when)
    click.echo(json.dumps(counts))


@accounts_cli.command("create")
@click.argument("name")
@click.option("--scopes", default="marketer", show_default=True,
              help="Comma list of marketer, compliance, admin.")
@click.option("--json", "as_json", is_flag=True, help="Print {account_id, api_key} as JSON.")
def accounts_create(name, scopes, as_json):
    """Create an account and its first API key (shown once, stored hashed)."""
    try:
        account_id, key = accounts.create_account(name, scopes=[s.strip() for s in scopes.split(",") if s.strip()])
    except FlexmailError as exc:
        raise click.UsageError(exc.message) from None
    if as_json:
        click.echo(json.dumps({"account_id": account_id, "api_key": key}))
    else:
        click.echo(f"account {account_id} created; API key (shown once): {key}")


@outbox_cli.command("sweep")
@click.option("--loop", "interval", type=int, default=0,
              help="Sweep every N seconds until stopped (0: once).")
def outbox_sweep(interval):
    """Enqueue outbox messages left pending (e.g. by a crash between commit and enqueue)."""
    while True:
        click.echo(f"enqueued {outbox.sweep()}")
        if interval <= 0:
            return
        time.sleep(interval)


@click.command("demo")
def demo():
    """Create a demo account with a list, and print its key and ready-to-paste curl commands."""
    account_id, key = accounts.create_account("Demo marketer", scopes=["marketer", "compliance"])
    lst = lists.create_list(
        account_id, name="Demo newsletter", sender_name="Flexmail Demo",
        sender_email="newsletter@example.com",
        consent_text="I agree to receive the Demo newsletter about product news, about twice a month. "
                     "I can unsubscribe at any time.",
    )
    base = current_app.config["PUBLIC_URL"]
    click.echo(f"""
Demo account {account_id}, list {lst.id}.
API key (shown once): {key}

Hosted signup form:  {base}/subscribe/{lst.id}
Mail goes to:        {current_app.config['MAIL_URL']}

Try it:
  curl -s -X POST {base}/api/v1/lists/{lst.id}/subscriptions \\
    -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\
    -d '{{"email": "you@example.com", "ip": "203.0.113.7", "user_agent": "curl demo", "source": "demo"}}'
  # open the confirmation link from the newest file in the Maildir, then:
  curl -s '{base}/api/v1/proof?email=you@example.com' -H 'Authorization: Bearer {key}'
""")


def init_app(app) -> None:
    app.cli.add_command(accounts_cli)
    app.cli.add_command(outbox_cli)
    app.cli.add_command(proof_cli)
    app.cli.add_command(retention_cli)
    app.cli.add_command(demo)
