#!/bin/sh
# The peer in a venv of its own (never in the project's requirements).
set -e
VENV=${BENCH_HELPDESK_VENV:-/tmp/helpdesk-venv}
test -x "$VENV/bin/python" || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q "django-helpdesk==2.6.1" "psycopg[binary]==3.3.9"
