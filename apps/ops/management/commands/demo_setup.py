"""Demo data for `make run`: users for each role, a team, queues, canned
responses and an account on the simulated network. Safe to run twice."""
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.accounts.models import Presence, Role, Team, User
from apps.connectors.models import ChannelAccount, Provider
from apps.inbox.models import CannedResponse, Queue
from apps.ingest.polling import account_poll
from apps.routing.models import BusinessHours, RoutingRule, SlaPolicy

USERS = [
    ("admin", Role.ADMIN, "Ada", "Admin"),
    ("supervisor", Role.SUPERVISOR, "Sam", "Supervisor"),
    ("agent", Role.AGENT, "Alex", "Agent"),
    ("agent2", Role.AGENT, "Bea", "Agent"),
    ("marketing", Role.MARKETING, "Mia", "Marketing"),
]
CANNED = [
    ("thanks", "Thanks", "Thanks for reaching out, {{ customer.name }}! — {{ agent.first_name }}"),
    ("dm", "Move to DM", "Sorry about this, {{ customer.name }}. Could you DM us your order number so we can look into it?"),
    ("outage", "Known outage", "We're aware of the issue and working on a fix. Updates on our status page. Sorry for the trouble!"),
]


class Command(BaseCommand):
    help = "Create demo users (password = username), a team, queues and a simulated channel account."

    @transaction.atomic
    def handle(self, *args, **options):
        team, _ = Team.objects.get_or_create(name="Care")
        for username, role, first, last in USERS:
            user, created = User.objects.get_or_create(
                username=username, defaults={"role": role, "first_name": first, "last_name": last,
                                             "email": f"{username}@example.com"})
            if created:
                user.set_password(username)
                user.is_staff = user.is_superuser = role == Role.ADMIN
                user.presence = Presence.ONLINE if role in (Role.AGENT, Role.SUPERVISOR) else Presence.OFFLINE
                user.save()
            if role in (Role.AGENT, Role.SUPERVISOR):
                team.members.add(user)
            if role == Role.SUPERVISOR:
                team.leads.add(user)
        Queue.objects.get_or_create(name="General", defaults={"team": team, "is_default": True,
                                                              "assignment_mode": Queue.AssignmentMode.LEAST_LOADED})
        escalations, _ = Queue.objects.get_or_create(name="Escalations", defaults={"team": team})
        self._routing(team, escalations)
        for shortcut, title, text in CANNED:
            CannedResponse.objects.get_or_create(shortcut=shortcut, team=None, defaults={"title": title, "text": text})
        account, _ = ChannelAccount.objects.get_or_create(
            provider=Provider.DEMO, handle="@acme", defaults={"name": "Acme (demo network)", "external_user_id": "demo-acme"})
        if not account.messages.exists():
            # a first batch so the inbox is not empty; the worker routes it on start
            transaction.on_commit(lambda: self._seed(account))
        self.stdout.write(self.style.SUCCESS(
            "Demo ready: log in at http://127.0.0.1:8000/ as agent/agent, supervisor/supervisor, "
            "marketing/marketing or admin/admin."))

    def _routing(self, team, escalations):
        """Demo routing: SLA targets, office hours, and two rules (docs/routing.md)."""
        BusinessHours.objects.get_or_create(team=team, defaults={"time_zone": team.time_zone or "UTC"})
        SlaPolicy.objects.get_or_create(name="Standard", queue=None, priority_bucket=None, defaults={
            "first_response_minutes": 60, "next_response_minutes": 30, "resolution_minutes": 24 * 60})
        SlaPolicy.objects.get_or_create(name="Urgent", queue=None, priority_bucket=0, defaults={
            "first_response_minutes": 15, "next_response_minutes": 15, "resolution_minutes": 4 * 60})
        RoutingRule.objects.get_or_create(name="Legal threats and outages to Escalations", defaults={
            "position": 10, "keywords": ["lawyer", "legal action", "outage", "is down"], "set_queue": escalations,
            "set_priority_bucket": 0, "add_tags": ["escalation"]})
        RoutingRule.objects.get_or_create(name="Tag refunds", defaults={
            "position": 20, "keywords": ["refund", "charged twice", "money back"], "add_tags": ["refund"]})

    def _seed(self, account):
        for _ in range(10):
            account_poll(account=account)
