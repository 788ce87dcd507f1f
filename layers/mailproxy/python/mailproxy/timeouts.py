"""Every network timeout of the proxy, in seconds, in one place.

Each is a bound on one wait, so that no call outlives the Lambda that makes it: they are set
together with the functions' timeouts (infra/constructs) and the leases that count on them
(service.reporting.LEASE_SECONDS). Local mode's own waits (infra/local) are not here.
"""

from __future__ import annotations

# AWS calls (boto3 clients, pynamodb): connecting, then each read of the answer.
AWS_CONNECT_SECONDS = 5
AWS_READ_SECONDS = 10

# Outbound HTTP to the URLs tenants give (mailproxy.outbound_http): connecting, then each read.
HTTP_CONNECT_SECONDS = 5.0
HTTP_READ_SECONDS = 10.0
# The whole of one attachment fetch (http_url, s3, endpoint), by default.
ATTACHMENT_FETCH_SECONDS = 10.0
# The whole of one delivery-report call to a tenant's client.
REPORT_CALL_SECONDS = 10.0

# SMTP: connecting (and, for implicit TLS, its handshake), then each socket operation
# after it (greeting, STARTTLS, login, every command of a send).
SMTP_CONNECT_SECONDS = 10.0
SMTP_SEND_SECONDS = 30.0
# How long a send waits for one of its account's connections to be free before giving up
# (for now: nothing was sent) when max_connections are all in use.
SMTP_WAIT_FOR_CONNECTION_SECONDS = 30.0

# The CLI (mailproxy.cli): each call to the proxy's HTTP API, and its AWS calls.
CLI_HTTP_SECONDS = 10
CLI_AWS_CONNECT_SECONDS = 5
CLI_AWS_READ_SECONDS = 10
