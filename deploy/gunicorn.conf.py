"""gunicorn settings for production: `gunicorn -c deploy/gunicorn.conf.py app:app`.

The access log leaves out the client address (%(h)s) and Flexmail's log record factory
(flexmail.redact) replaces tokens in paths, so no IP or token reaches the log.
"""

import os

bind = os.environ.get("FLEXMAIL_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("FLEXMAIL_WEB_WORKERS", "4"))
threads = int(os.environ.get("FLEXMAIL_WEB_THREADS", "4"))
timeout = 30
accesslog = "-"
access_log_format = '"%(m)s %(U)s" %(s)s %(B)s %(M)sms "%(a)s"'
# Query strings are left out (%(U)s is the path only): they may hold addresses.
forwarded_allow_ips = os.environ.get("FLEXMAIL_FORWARDED_ALLOW_IPS", "127.0.0.1")
