"""Command line: `flask --app app accounts|outbox|demo ...` (plus Flask-Migrate's `db`)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
import sys
import threading
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from flexmail.services.consent import flood
from flexmail.services.delivery import dev_mailbox, outbox
from flexmail.services.evidence import export, retention, sealing
from flexmail.services.marketer import accounts, lists
from flexmail.services.platform.errors import FlexmailError

accounts_cli = AppGroup("accounts", help="Marketer accounts and API keys.")
outbox_cli = AppGroup("outbox", help="The transactional outbox.")
inbound_cli = AppGroup("inbound", help="Received mail: unsubscribe requests to the List-Unsubscribe mailto.")

#: sysexits.h codes, which MTAs (Postfix pipe) understand: bounce, bounce, retry later.
EX_DATAERR, EX_NOUSER, EX_TEMPFAIL = 65, 67, 75
proof_cli = AppGroup("proof", help="Consent proof: verify exports.")
retention_cli = AppGroup("retention", help="Retention of personal data and proof.")


@proof_cli.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--head", "head", default=None,
              help="A signed tree head (JSON text or a file, from GET /api/v1/proof/head) held elsewhere: "
                   "a later one detects a cut tail, an earlier one rewritten history.")
@click.option("--public-key", "public_key", default=None,
              help="The Ed25519 public key (GET /proof/key) instead of this installation's.")
def proof_verify(file, head, public_key):
    """Verify an export offline: every row's hashes and commitments, order, the RFC 9162 root
    recomputed from its leaves against the signed tree head, and the signed manifest."""
    head_document = None
    if head:
        try:
            text = Path(head).read_text() if len(head) < 4096 and Path(head).is_file() else head
        except OSError:
            text = head
        try:
            head_document = json.loads(text)
        except json.JSONDecodeError:
            raise click.UsageError("--head must be the JSON of GET /api/v1/proof/head (text or file)") from None
    with open(file, newline="", encoding="utf-8") as handle:
        check = export.verify_export(handle, head_document=head_document, public_key=public_key)
    if check.ok:
        click.echo(check.message)
        return
    where = f" at row {check.row}" if check.row else ""
    raise click.ClickException(f"FAILED{where}: {check.message}")


@proof_cli.command("seal")
@click.argument("account_id", type=int, required=False)
def proof_seal(account_id):
    """Seal unsealed events now (one account, or every account that has some) and print the heads."""
    targets = [account_id] if account_id else sorted(set(sealing.accounts_to_seal())
                                                     | set(sealing.accounts_with_legacy_events()))
    for target in targets:
        click.echo(json.dumps(sealing.seal(target), sort_keys=True))


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


@accounts_cli.command("set-controller")
@click.argument("account_id", type=int)
@click.option("--legal-name", required=True, help="The controller's legal name, as on consent certificates.")
@click.option("--address", "postal_address", required=True, help="Its postal address (use \\n between lines).")
def accounts_set_controller(account_id, legal_name, postal_address):
    """Name the controller of an account's personal data (shown on consent certificates)."""
    try:
        result = accounts.set_controller(account_id, legal_name=legal_name,
                                         postal_address=postal_address.replace("\\n", "\n"))
    except FlexmailError as exc:
        raise click.UsageError(exc.message) from None
    click.echo(json.dumps(result))


@outbox_cli.command("sweep")
@click.option("--loop", "interval", type=int, default=0,
              help="Be the installation's sweeper: sweep every N seconds while holding the sweeper "
                   "lease, until stopped (0: sweep once).")
def outbox_sweep(interval):
    """Enqueue due outbox mail nobody took, and free claims of workers that died.

    Worker processes already offer to be the sweeper (one per installation holds the lease);
    this command is for a separate sweeper process or a one-off run. Not on the embedded
    default: there the web process's worker sweeps, and a queue in this process has no worker.
    """
    if current_app.config["BROKER_URL"] == "stub":
        raise click.UsageError("the embedded default sweeps in the web process; set FLEXMAIL_BROKER_URL "
                               "to a Redis or RabbitMQ broker to sweep from here")
    if interval <= 0:
        click.echo(f"enqueued {outbox.sweep()}")
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        outbox.run_sweeper(current_app._get_current_object(), interval, stop)
    except KeyboardInterrupt:
        stop.set()


@outbox_cli.command("resend")
@click.argument("subscription_id", type=int)
@click.option("--account", "account_id", type=int, required=True, help="The account the subscription belongs to.")
def outbox_resend(subscription_id, account_id):
    """Make the failed or refused confirmation mail of a pending signup due again."""
    try:
        state = outbox.resend_confirmation(account_id, subscription_id)
    except FlexmailError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(json.dumps(state))


@outbox_cli.command("held")
@click.option("--account", "account_id", type=int, default=None, help="Only this account's mails.")
@click.option("--limit", type=int, default=100, show_default=True)
def outbox_held(account_id, limit):
    """Confirmation mails held by the platform-wide cap per address (platform admin), as
    JSON lines, newest first. The accounts saw these signups succeed; nothing was sent."""
    for row in flood.held_confirmations(account_id=account_id, limit=limit):
        click.echo(json.dumps(row))


@inbound_cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8025, show_default=True, help="TCP port to listen on.")
def inbound_serve(host, port):
    """Run the SMTP listener for unsubscribe mail until stopped (SIGINT or SIGTERM)."""
    from flexmail.inbound import smtp

    controller = smtp.make_controller(current_app._get_current_object(), host=host, port=port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    controller.start()
    from flexmail import drainer

    drainer.start(current_app._get_current_object())  # opt-outs spooled here are applied here
    click.echo(f"inbound: listening on {host}:{port} for unsubscribe mail", err=True)
    try:
        while not stop.wait(1):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


@inbound_cli.command("deliver")
@click.option("--recipient", "-r", "recipients", multiple=True,
              help="Envelope recipient (Postfix pipe: ${original_recipient}); repeatable. "
                   "Default: the Delivered-To, X-Original-To, To and Cc headers.")
def inbound_deliver(recipients):
    """Process one RFC 5322 message from standard input (e.g. a Postfix pipe transport).

    Exit 0: unsubscribed. 67: not addressed to an unsubscribe address (nothing done).
    65: no message. 75: temporary failure, deliver again later.
    """
    from flexmail.inbound import mailto

    data = sys.stdin.buffer.read()
    try:
        result = mailto.deliver(data, list(recipients))
    except mailto.NoMessage as exc:
        click.echo(f"inbound deliver: {exc}", err=True)
        sys.exit(EX_DATAERR)
    except mailto.NotOurs as exc:
        click.echo(f"inbound deliver: rejected: {exc}", err=True)
        sys.exit(EX_NOUSER)
    except Exception:
        logging.getLogger(__name__).exception("inbound deliver failed")
        click.echo("inbound deliver: temporary failure, try again later", err=True)
        sys.exit(EX_TEMPFAIL)
    click.echo(f"inbound deliver: unsubscribe processed for {result.recipients} recipient(s)")


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
    where = (f"open the newest mail at {base}/dev/mail and click its confirm button"
             if dev_mailbox.available(current_app.config)
             else "open the confirmation link from the newest file in the Maildir")
    click.echo(f"""
Demo account {account_id}, list {lst.id}.
API key (shown once): {key}

Hosted signup form:  {base}/subscribe/{lst.id}
Mail goes to:        {current_app.config['MAIL_URL']}

Try it:
  curl -s -X POST {base}/api/v1/lists/{lst.id}/subscriptions \\
    -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\
    -d '{{"email": "you@example.com", "ip": "203.0.113.7", "user_agent": "curl demo", "source": "demo"}}'
  # {where}, then:
  curl -s '{base}/api/v1/proof?email=you@example.com' -H 'Authorization: Bearer {key}'

Dashboard (sign in with the API key): {base}/dashboard
""")


suppressions_cli = AppGroup("suppressions", help="The suppression list.")


@suppressions_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--account", "account_id", type=int, required=True, help="The account the entries are for.")
@click.option("--reason", default="manual", show_default=True,
              type=click.Choice(["unsubscribed", "hard_bounce", "complaint", "manual"]))
@click.option("--global", "platform", is_flag=True, help="Platform-wide entries (operator only).")
def suppressions_import(file, account_id, reason, platform):
    """Import FILE (CSV with an email column, or one address a line; '-' reads stdin).

    Runs here with a progress bar, then lists rejected lines by number and reason.
    """
    from flexmail.services.suppression import imports
    from flexmail.services.suppression.suppressions import Actor

    with click.open_file(file, "rb") as handle:
        content = handle.read()
    try:
        job = imports.create_import(account_id, content, reason=reason, scope="global" if platform else "account",
                                    actor=Actor("cli", admin=True), enqueue=False)
    except FlexmailError as exc:
        detail = "; ".join(m for msgs in exc.fields.values() for m in msgs) or exc.message
        raise click.UsageError(detail) from None
    with click.progressbar(length=job.total_rows or 0, label="Importing", file=sys.stderr) as bar:
        imports.run_import(job.id, progress=bar.update)
    job = imports.get_import(account_id, job.id)
    click.echo(f"import {job.id}: {job.rows_done} rows, {job.imported} imported, {job.existing} already "
               f"suppressed, {job.rejected} rejected")
    for error in job.errors or []:
        click.echo(f"  line {error['line']}: {error['reason']}")


spool_cli = AppGroup("spool", help="Opt-outs spooled while the database was down.")


@spool_cli.command("drain")
def spool_drain():
    """Apply the spooled opt-outs now (each once, with its original time); print the counts."""
    from flexmail.services.optout import spool

    result = spool.drain()
    click.echo(json.dumps(result.as_dict()))
    if result.left:
        sys.exit(EX_TEMPFAIL)


@spool_cli.command("status")
def spool_status():
    """Print how many opt-outs wait in the spool and how many were rejected (no database needed)."""
    from flexmail.services.optout import spool

    click.echo(json.dumps(spool.status()))


def init_app(app) -> None:
    from flexmail.cli_keys import keys_cli

    accounts_cli.add_command(keys_cli)
    app.cli.add_command(accounts_cli)
    app.cli.add_command(outbox_cli)
    app.cli.add_command(inbound_cli)
    app.cli.add_command(suppressions_cli)
    app.cli.add_command(proof_cli)
    app.cli.add_command(retention_cli)
    app.cli.add_command(demo)
    app.cli.add_command(spool_cli)
