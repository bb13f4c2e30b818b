"""Configuration: defaults, FLEXMAIL_* environment variables, secrets made once in instance/."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

DEFAULTS = {
    # Embedded default: everything lives in the instance folder.
    "DATABASE_URL": None,  # None -> sqlite:///<instance>/flexmail.db
    "BROKER_URL": "stub",
    "MAIL_URL": None,  # None -> maildir:<instance>/mail
    "PUBLIC_URL": "http://127.0.0.1:5000",
    "SECRET_KEYS": None,  # comma list, newest first
    "HASH_KEY": None,
    "SIGNING_KEY": None,  # Ed25519 seed, base64url: signs ledger heads and export manifests
    "TRUSTED_PROXIES": 0,
    "CONFIRM_MAX_AGE": 7 * 24 * 3600,
    "CONFIRM_CLICK_GATE": 300,
    "PENDING_RETENTION_DAYS": 30,
    "IP_RETENTION_DAYS": 365,  # IPs in events older than this are truncated to /24 or /48
    "WITHDRAWN_RETENTION_YEARS": 3,  # events of withdrawn consent are deleted this long after
    "RATELIMIT_STORAGE_URL": None,  # None -> memory:// (or the Redis broker's server)
    # Flood control for confirmation mails (a mailbox must not be bombed through us).
    "CONFIRM_PER_ADDRESS_PER_DAY": 3,
    "CONFIRM_PER_IP_PER_HOUR": 20,
    "CONFIRM_PER_ACCOUNT_PER_HOUR": 1000,
    # Platform-wide cap per address and day, over every account: past it the mail is held
    # (the account sees a normal signup), for the platform admin to review.
    "CONFIRM_PLATFORM_PER_ADDRESS_PER_DAY": 10,
    # Seconds a verified API key is trusted per process before it is looked up again
    # (so a revoked key keeps working for at most this long in other processes; 0: off).
    "API_KEY_CACHE_SECONDS": 5,
    "FORM_RATE_LIMIT": "20 per minute;200 per hour",
    # Requests per API key (Flask-Limiter syntax; empty: no limit). Answers carry RateLimit-*.
    "API_RATE_LIMIT": "1200 per minute",
    # A request whose Idempotency-Key is in use by a running request waits this long for
    # that request's answer before it gets 409 idempotency_in_progress.
    "IDEMPOTENCY_WAIT_SECONDS": 5,
    # ... and a claim whose request died (the database or the process) is taken over after this.
    "IDEMPOTENCY_LEASE_SECONDS": 60,
    # Outbox: how long a claimed send may take before another worker may retry it,
    # how often the sweeper looks, and how old a pending row must be before it is swept.
    "OUTBOX_LEASE_SECONDS": 120,
    "OUTBOX_SWEEP_INTERVAL": 30,
    "OUTBOX_SWEEP_GRACE": 10,
    # The retry schedule on each outbox row: 30 s doubling to 1 h, with jitter; 64 attempts
    # span at least 51 h, so a relay outage of up to 48 h loses nothing (domain/retry.py).
    "OUTBOX_RETRY_BASE": 30,
    "OUTBOX_RETRY_CAP": 3600,
    "OUTBOX_MAX_ATTEMPTS": 64,
    # A worker claims up to this many due rows at once and sends them over one connection.
    "OUTBOX_BATCH": 50,
    # ... and records their outcomes every this many mails: a worker killed mid-batch re-sends
    # at most this many (per thread) after the lease; fewer transactions cost less per mail.
    "OUTBOX_RECORD_EVERY": 25,
    # Opt-out spool (database down): where it lives (None -> <instance>/spool), how large the
    # pending file may grow, and how often each long-running process drains it (0: never).
    "SPOOL_DIR": None,
    "SPOOL_MAX_BYTES": 256 * 1024 * 1024,
    "SPOOL_DRAIN_INTERVAL": 30,
    # Seconds to wait for a PostgreSQL connection: an unreachable host must give a quick 503.
    "DATABASE_CONNECT_TIMEOUT": 5,
    "EMBEDDED_WORKER": True,
    # Redis broker: a worker process whose heartbeat is older than this (ms) is dead, and the
    # messages it had fetched go back to their queues at the next queue maintenance, which
    # runs on this many commands out of a million (dramatiq's defaults: 60 s, 1,000).
    "BROKER_HEARTBEAT_TIMEOUT": 60_000,
    "BROKER_MAINTENANCE_CHANCE": 1_000,
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    # Suppression checks, bulk adds and imports carry up to 100,000 addresses: their routes
    # (only those) accept bodies up to this size.
    "SUPPRESSION_BULK_MAX_BYTES": 16 * 1024 * 1024,
    # Unsubscribe mail (mailto in List-Unsubscribe) is addressed to unsub-<token>@ this
    # domain; None -> the host of PUBLIC_URL. Its MX must reach `flask inbound serve|deliver`.
    "INBOUND_DOMAIN": None,
    "REPORT_LOCALPARTS": "bounces,abuse",  # inbound addresses that take DSN and ARF reports
    # Bounce policy defaults (an account may set its own): suppress after this many soft
    # bounces with no delivery in between, spread over at least this many days.
    "BOUNCE_SOFT_COUNT": 3,
    "BOUNCE_SOFT_DAYS": 7,
    # ESP hooks: events older than this (seconds) are refused as stale.
    "HOOK_MAX_AGE": 300,
    # SES/SNS: SigningCertURL and SubscribeURL must match this host pattern (tests override it).
    "SNS_HOST_PATTERN": r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$",
    "SNS_URL_SCHEMES": "https",
    # Bearer token of POST /internal/inbound, which the fast pipe (flexmail/inbound/pipe.py)
    # hands received mail to; None -> the endpoint is off.
    "INBOUND_TOKEN": None,
    "LOG_LEVEL": "INFO",
    # Development mode (``./dev run`` sets FLEXMAIL_DEV_MODE=1): with the Maildir transport it
    # adds the development mailbox at /dev/mail. Off in production and in tests.
    "DEV_MODE": False,
    # Forward to a friend (standards H): link lifetime, abuse limits, delivery retries.
    "FORWARD_MAX_AGE": 90 * 24 * 3600,
    "FORWARD_PER_TOKEN_PER_DAY": 3,
    "FORWARD_CAMPAIGN_DAILY_FACTOR": 5,  # friends per campaign and day <= this x subscribed list size
    "FORWARD_RATE_LIMIT": "10 per minute;60 per hour",
    "FORWARD_MAX_ATTEMPTS": 3,
    "FORWARD_RETRY_DELAY_MS": 60_000,  # first retry; each further one waits 4x longer
    "CAMPAIGN_RECIPIENTS_BATCH": 500,
    # Webhooks: endpoints on loopback/private/link-local addresses are refused unless this is
    # true (a receiver on the operator's own network; tests). Retries back off from
    # WEBHOOK_RETRY_BASE seconds doubling to WEBHOOK_RETRY_CAP, WEBHOOK_MAX_ATTEMPTS times (> 24 h).
    "WEBHOOKS_ALLOW_PRIVATE": False,
    # Seconds a process trusts its copy of an account's webhook endpoints (0: read per transaction).
    "WEBHOOK_ENDPOINT_CACHE_SECONDS": 5,
    # Contact imports (POST /api/v1/lists/<id>/imports, up to 1,000,000 rows) accept bodies this large.
    "CONTACT_IMPORT_MAX_BYTES": 256 * 1024 * 1024,
    "WEBHOOK_TIMEOUT_SECONDS": 5,
    "WEBHOOK_RETRY_BASE": 30,
    "WEBHOOK_RETRY_CAP": 3600,
    "WEBHOOK_MAX_ATTEMPTS": 36,
    # Finished deliveries (and the addresses they name) stay in the log this long.
    "WEBHOOK_LOG_DAYS": 30,
    # List logos are fetched once over https; tests fetch from 127.0.0.1 with their own CA.
    "LOGO_FETCH_ALLOW_PRIVATE": False,
    "LOGO_CA_FILE": None,  # None -> the system's CA certificates
    # Seconds between two rounds of the ledger sealer in a worker (0: only on demand).
    "LEDGER_SEAL_INTERVAL": 5,
    # /metrics (flexmail.observability): readable from loopback (unless off) or with this bearer token;
    # WORKER_METRICS adds dramatiq's Prometheus middleware (set for dramatiq worker processes only).
    "METRICS_TOKEN": None,
    "METRICS_LOOPBACK": True,
    "WORKER_METRICS": False,
    # The read-only dashboard (/dashboard): how long a sign-in lasts at most, and how many
    # sign-in attempts one client may make (Flask-Limiter syntax).
    "DASHBOARD_SESSION_SECONDS": 8 * 3600,
    "DASHBOARD_SIGNIN_RATE_LIMIT": "10 per minute;50 per hour",
}

_INT_KEYS = {k for k, v in DEFAULTS.items() if isinstance(v, int) and not isinstance(v, bool)}
_BOOL_KEYS = {k for k, v in DEFAULTS.items() if isinstance(v, bool)}
ENV_PREFIX = "FLEXMAIL_"


def load(app, test_config: dict | None) -> None:
    """Fill ``app.config`` from defaults, the environment and ``test_config`` (in that order).

    Environment values stay strings: only keys whose default is a number or a flag are
    converted, so an all-digit secret, hash key or URL is read as the string it is
    (Flask's ``from_prefixed_env`` would parse it as JSON and turn it into an int).
    """
    app.config.from_mapping(DEFAULTS)
    app.config.from_mapping(read_env(os.environ))
    if test_config:
        app.config.from_mapping(test_config)
    for key in _INT_KEYS:
        app.config[key] = int(app.config[key])
    for key in _BOOL_KEYS:
        app.config[key] = _truthy(app.config[key])
    _set_cookie_flags(app.config)

    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    if not app.config["DATABASE_URL"]:
        app.config["DATABASE_URL"] = f"sqlite:///{instance / 'flexmail.db'}"
    if not app.config["MAIL_URL"]:
        app.config["MAIL_URL"] = f"maildir:{instance / 'mail'}"
    if not app.config["RATELIMIT_STORAGE_URL"]:
        broker = app.config["BROKER_URL"]
        app.config["RATELIMIT_STORAGE_URL"] = broker if broker.startswith("redis://") else "memory://"

    _load_secrets(app.config, instance)
    app.config["SQLALCHEMY_DATABASE_URI"] = app.config["DATABASE_URL"]
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = _engine_options(app.config["DATABASE_URL"],
                                                              app.config["DATABASE_CONNECT_TIMEOUT"])
    app.config["RATELIMIT_STORAGE_URI"] = app.config["RATELIMIT_STORAGE_URL"]
    app.config["RATELIMIT_HEADERS_ENABLED"] = True
    # A rate-limit store that goes away (Redis down) must not fail requests: Flask-Limiter
    # then counts in this process's memory, logs "falling back to in-memory storage", and
    # returns to the store when it answers again; any other limiter error is logged and
    # the request goes on unlimited rather than failing.
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    if str(app.config["RATELIMIT_STORAGE_URI"]).startswith(("redis://", "rediss://")):
        app.config["RATELIMIT_STORAGE_OPTIONS"] = {"socket_connect_timeout": 2, "socket_timeout": 2,
                                                   **app.config.get("RATELIMIT_STORAGE_OPTIONS", {})}
    app.config["WTF_CSRF_TIME_LIMIT"] = 3600 * 6
    app.config["PUBLIC_URL"] = app.config["PUBLIC_URL"].rstrip("/")
    # The newest secret signs sessions and CSRF tokens; all of them verify our own tokens.
    app.config["SECRET_KEY"] = app.config["SECRET_KEYS"][0]
    app.config.update(
        API_TITLE="Flexmail",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        # /api/docs is served by flexmail.api.docs from the pinned swagger-ui-bundle package.
    )


def read_env(environ) -> dict:
    """``FLEXMAIL_X=value`` -> ``{"X": "value"}``: every value as the string it is."""
    return {key[len(ENV_PREFIX):]: value for key, value in environ.items()
            if key.startswith(ENV_PREFIX) and len(key) > len(ENV_PREFIX)}


def _set_cookie_flags(config) -> None:
    """Session (and CSRF) cookies: HttpOnly, SameSite=Lax, and Secure behind https."""
    config["SESSION_COOKIE_HTTPONLY"] = True
    config["SESSION_COOKIE_SAMESITE"] = "Lax"
    config["SESSION_COOKIE_SECURE"] = str(config["PUBLIC_URL"]).startswith("https://")


def _truthy(value) -> bool:
    return value if isinstance(value, bool) else str(value).lower() in {"1", "true", "yes", "on"}


def _engine_options(url: str, connect_timeout: int) -> dict:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30}}
    # No pool_pre_ping (a round trip before every request): flexmail.database pings only a
    # connection that sat idle in the pool (see PING_IDLE_SECONDS there).
    if url.startswith("postgresql"):
        return {"connect_args": {"connect_timeout": connect_timeout}}
    return {}


def _load_secrets(config, instance: Path) -> None:
    """Use configured secrets; else make them once into instance/secrets.json and reuse them.

    Generated secrets are only for the embedded default: production sets
    FLEXMAIL_SECRET_KEYS, FLEXMAIL_HASH_KEY and FLEXMAIL_SIGNING_KEY so every process
    shares them.
    """
    stored_path = instance / "secrets.json"
    fresh = {"secret_keys": [secrets.token_urlsafe(32)], "hash_key": secrets.token_urlsafe(32),
             "signing_key": secrets.token_urlsafe(32)}
    stored = {}
    if not (config["SECRET_KEYS"] and config["HASH_KEY"] and config["SIGNING_KEY"]):
        try:
            fd = os.open(stored_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # made before, or by a process starting beside us
            stored = json.loads(stored_path.read_text())
            if not set(fresh) <= set(stored):  # an older file: add what is new, keep the rest
                stored = {**fresh, **stored}
                tmp = stored_path.with_suffix(".tmp")
                tmp.write_text(json.dumps(stored))
                tmp.chmod(0o600)
                tmp.replace(stored_path)
        else:
            with os.fdopen(fd, "w") as f:
                json.dump(fresh, f)
            stored = fresh
    keys = config["SECRET_KEYS"] or stored["secret_keys"]
    if isinstance(keys, str):
        keys = [k.strip() for k in keys.split(",") if k.strip()]
    config["SECRET_KEYS"] = list(keys)
    config["HASH_KEY"] = config["HASH_KEY"] or stored["hash_key"]
    config["SIGNING_KEY"] = config["SIGNING_KEY"] or stored["signing_key"]
