"""The audit log: non-conversation events (logins, tokens, edits) are recorded with who and when."""
import pytest
from django.urls import reverse

from apps.accounts.models import AuditEntry
from apps.accounts.services import audit_record

pytestmark = pytest.mark.django_db


def test_audit_record_stores_actor_action_target_and_data(supervisor):
    entry = audit_record(actor=supervisor, action="rule.updated", target="rule 7: VIP", data={"field": "queue"})
    entry.refresh_from_db()
    assert (entry.actor, entry.action, entry.target, entry.data) == (supervisor, "rule.updated", "rule 7: VIP",
                                                                       {"field": "queue"})
    assert entry.created_at is not None


def test_audit_record_accepts_system_and_anonymous_actors():
    from django.contrib.auth.models import AnonymousUser

    assert audit_record(actor=None, action="sla.breach_sweep").actor is None
    assert audit_record(actor=AnonymousUser(), action="auth.login_failed", target="mallory").actor is None


def test_login_and_failed_login_are_audited(client, agent):
    client.post(reverse("login"), {"username": agent.username, "password": "wrong"}, REMOTE_ADDR="10.1.1.1")
    client.post(reverse("login"), {"username": agent.username, "password": "pw-for-tests"}, REMOTE_ADDR="10.1.1.1")
    rows = list(AuditEntry.objects.filter(target=agent.username, action__startswith="auth.").order_by("id"))
    assert [r.action for r in rows] == ["auth.login_failed", "auth.login"]
    assert rows[1].actor == agent and rows[1].ip_address == "10.1.1.1"
    assert "wrong" not in str(rows[0].data)  # never the password
