"""The API fuzzed from its own OpenAPI schema (/api/schema/) with schemathesis,
in-process against the WSGI app, as an admin and as an agent: no 500s, and every
error is JSON {"detail": ...} with a client-error status."""
import json

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings as hypothesis_settings
from rest_framework.authtoken.models import Token

from tests.factories import ConversationFactory, MessageFactory, QueueFactory, TeamFactory, UserFactory

# Bounded: 67 operations x 2 roles x this many examples must stay well under 3 minutes.
MAX_EXAMPLES = 8
# 422: the same Idempotency-Key sent again with another body (apps/core/idempotency.py); the
# generated header repeats its value across examples.
ERROR_STATUSES = {400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 429}


@pytest.fixture
def tokens(db):
    """An admin and an agent, with a little data to find."""
    team = TeamFactory()
    queue = QueueFactory(team=team, is_default=True)
    admin = UserFactory(role="admin", is_staff=True, is_superuser=True)
    agent = UserFactory(role="agent")
    team.members.add(agent)
    for _ in range(2):
        MessageFactory(conversation=ConversationFactory(queue=queue))
    return {"admin": Token.objects.create(user=admin).key, "agent": Token.objects.create(user=agent).key}


def _check(case, response):
    where = f"{case.method} {case.formatted_path} -> {response.status_code}"
    assert response.status_code < 500, f"server error: {where}\n{response.text[:500]}"
    if response.status_code >= 400:
        assert response.status_code in ERROR_STATUSES, where
        content_type = (response.headers.get("content-type") or [""])[0]
        assert content_type.startswith("application/json"), f"error is not JSON: {where} ({content_type})"
        body = json.loads(response.content)
        assert isinstance(body, dict) and "detail" in body, f"error without detail: {where} {body}"


# No shrinking: a failure is reported as found, so a failing run stays as short as a passing one.
FUZZ = hypothesis_settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))


@pytest.fixture
def keep_test_connection():
    """As Django's test client does: requests must not close the test's database
    connection (it holds the test transaction; on PostgreSQL closing it breaks the test)."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.parametrize("role", ["admin", "agent"])
def test_api_fuzzed_from_its_schema(role, tokens, keep_test_connection):
    from cxinbox.wsgi import application

    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    headers = {"Authorization": f"Token {tokens[role]}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20  # the whole API, not a stub

    for operation in operations:
        @given(case=operation.as_strategy())
        @FUZZ
        def fuzz(case):
            _check(case, case.call(headers=headers))

        fuzz()
