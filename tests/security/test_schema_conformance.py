"""The API answers what its own OpenAPI schema (/api/schema/) says: schemathesis
generates requests for every operation, in-process against the WSGI app on
PostgreSQL, as an admin, a supervisor and an agent (token auth), and checks each
response for a server error and against the documented response schema (status
and body). 0 server errors, 0 schema violations (issue 18, "Schema drift").

Bounded for `make test`: SCHEMA_FUZZ_EXAMPLES examples per operation and role
(default 4, a minute or two per role). A longer run by hand:
    SCHEMA_FUZZ_EXAMPLES=50 pytest tests/security/test_schema_conformance.py"""
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings as hypothesis_settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.core.failures import FailureGroup

from tests.factories import ConversationFactory, MessageFactory, QueueFactory, TeamFactory, UserFactory

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

MAX_EXAMPLES = int(os.environ.get("SCHEMA_FUZZ_EXAMPLES", "4"))
CHECKS = [not_a_server_error, response_schema_conformance]

# No shrinking: a failure is reported as found, so a failing run stays as short as a passing one.
FUZZ = hypothesis_settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))


@pytest.fixture
def tokens(db):
    """The three working roles, a team the supervisor leads and the agent works in, and a little data."""
    team = TeamFactory()
    queue = QueueFactory(team=team, is_default=True)
    admin = UserFactory(role="admin", is_staff=True, is_superuser=True)
    supervisor = UserFactory(role="supervisor")
    agent = UserFactory(role="agent")
    team.members.add(agent, supervisor)
    team.leads.add(supervisor)
    for assignee in (agent, None):
        conversation = ConversationFactory(queue=queue, assignee=assignee)
        MessageFactory(conversation=conversation)
    keys = {role: Token.objects.create(user=user).key
            for role, user in (("admin", admin), ("supervisor", supervisor), ("agent", agent))}
    # Objects that exist, for the reads generated ids rarely hit (a 404 has no body to drift).
    keys["objects"] = {"/api/v1/conversations/{id}/": conversation.pk,
                       "/api/v1/conversations/{id}/messages/": conversation.pk,
                       "/api/v1/customers/{id}/": conversation.customer_id, "/api/v1/users/{id}/": agent.pk,
                       "/api/v1/teams/{id}/": team.pk, "/api/v1/queues/{id}/": queue.pk}
    return keys


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


@pytest.mark.parametrize("role", ["admin", "supervisor", "agent"])
def test_api_conforms_to_its_schema(role, tokens, keep_test_connection):
    from cxinbox.wsgi import application

    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    headers = {"Authorization": f"Token {tokens[role]}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20  # the whole API, not a stub

    failures = []
    for operation in operations:
        @given(case=operation.as_strategy())
        @FUZZ
        def fuzz(case):
            response = case.call(headers=headers)
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except (Exception, FailureGroup) as exc:
                where = f"{case.method} {case.formatted_path} {case.query or ''} -> {response.status_code}"
                failures.append(f"{where}\n{str(exc)[:800]}")
                raise

        try:
            fuzz()
        except (Exception, FailureGroup):  # noqa: BLE001
            pass  # collected: every operation is tried before the test fails
    for path, pk in tokens["objects"].items():
        case = schema[path]["GET"].Case(path_parameters={"id": pk})
        response = case.call(headers=headers)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Exception, FailureGroup) as exc:
            failures.append(f"GET {path} (id {pk}) -> {response.status_code}\n{str(exc)[:800]}")
    assert not failures, f"{len(failures)} operation(s) do not conform:\n\n" + "\n\n".join(failures)
