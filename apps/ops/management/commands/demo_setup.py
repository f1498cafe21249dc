"""Demo data for `make run`: users for each role, two teams and their queues, canned
responses, routing, three simulated channel accounts (the demo network, an email inbox and
a Mastodon account, none of which leaves this machine) and 30 days of a team's work on
them (apps/ops/demo_history.py), then the report rollups. Safe to run twice: the second
run finds everything there and adds nothing."""
import time

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.accounts.models import Presence, Role, Team, User
from apps.connectors.models import ChannelAccount, Provider
from apps.connectors.providers.demo_texts import CHATTER_TAGS
from apps.inbox.models import CannedResponse, Queue
from apps.ops import demo_history
from apps.routing.models import BusinessHours, RoutingRule, SlaPolicy

# username (password = username), role, first name, last name, teams, presence after the set-up
USERS = [
    ("admin", Role.ADMIN, "Ada", "Admin", [], Presence.OFFLINE),
    ("supervisor", Role.SUPERVISOR, "Sam", "Supervisor", ["Care", "Billing"], Presence.ONLINE),
    ("agent", Role.AGENT, "Alex", "Agent", ["Care"], Presence.ONLINE),
    ("agent2", Role.AGENT, "Bea", "Agent", ["Care"], Presence.ONLINE),
    ("agent3", Role.AGENT, "Carlos", "Agent", ["Billing"], Presence.ONLINE),
    ("agent4", Role.AGENT, "Dana", "Agent", ["Billing"], Presence.AWAY),
    ("agent5", Role.AGENT, "Eli", "Agent", ["Care"], Presence.OFFLINE),
    ("marketing", Role.MARKETING, "Mia", "Marketing", [], Presence.OFFLINE),
]
CANNED = [
    ("thanks", "Thanks", "Thanks for reaching out, {{ customer.name }}! — {{ agent.first_name }}"),
    ("dm", "Move to DM", "Sorry about this, {{ customer.name }}. Could you DM us your order number so we can look into it?"),
    ("outage", "Known outage", "We're aware of the issue and working on a fix. Updates on our status page. Sorry for the trouble!"),
    ("refund", "Refund issued", "I've issued the refund, {{ customer.name }}; banks take 3-5 working days to show it."),
]
# provider, handle, name, credentials: the email and Mastodon accounts are simulated
# (ChannelAccount.is_simulated): polled and answered by the demo network, never the internet.
ACCOUNTS = [
    (Provider.DEMO, "@acme", "Acme (demo network)", {}),
    (Provider.EMAIL, "support@acme.example", "Acme support mailbox (demo)", {"simulated": True}),
    (Provider.MASTODON, "@acme@social.example", "Acme on Mastodon (demo)", {"simulated": True}),
]


class Command(BaseCommand):
    help = ("Create the demo: users of each role (password = username), two teams, queues, routing, "
            "three simulated channel accounts and 30 days of history, then rebuild the reports.")

    def handle(self, *args, **options):
        started = time.monotonic()
        with transaction.atomic():
            teams, supervisor = self._people()
            self._queues_and_routing(teams)
            for shortcut, title, text in CANNED:
                CannedResponse.objects.get_or_create(shortcut=shortcut, team=None,
                                                     defaults={"title": title, "text": text})
            accounts = {}
            for provider, handle, name, credentials in ACCOUNTS:
                accounts[provider.value], _ = ChannelAccount.objects.get_or_create(
                    provider=provider, handle=handle, defaults={
                        "name": name, "external_user_id": f"demo-{provider.value}", "credentials": credentials})
        if demo_history.history_exists():
            self.stdout.write("The demo's history is there already: nothing added.")
        else:
            self._presence(online_all=True)
            result = demo_history.history_build(accounts=accounts, supervisor=supervisor)
            self._presence(online_all=False)
            self.stdout.write(
                f"History: {result.cases} conversations, {result.inbound} customer messages, {result.replies} "
                f"replies ({result.failed} refused by the network), {result.resolved} resolves, "
                f"{result.surveys_answered} survey answers.")
            call_command("reports_rebuild", stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS(
            f"Demo ready in {time.monotonic() - started:.1f}s: log in at http://127.0.0.1:8000/ as agent/agent, "
            "supervisor/supervisor, marketing/marketing or admin/admin."))

    def _people(self):
        teams = {name: Team.objects.get_or_create(name=name)[0] for name in ("Care", "Billing")}
        supervisor = None
        for username, role, first, last, team_names, _presence in USERS:
            user, created = User.objects.get_or_create(
                username=username, defaults={"role": role, "first_name": first, "last_name": last,
                                             "email": f"{username}@example.com"})
            if created:
                user.set_password(username)
                user.is_staff = user.is_superuser = role == Role.ADMIN
                user.save()
            for name in team_names:
                teams[name].members.add(user)
                if role == Role.SUPERVISOR:
                    teams[name].leads.add(user)
            if role == Role.SUPERVISOR:
                supervisor = user
        return teams, supervisor

    def _presence(self, *, online_all: bool) -> None:
        """Everyone works the history's shifts; afterwards some are away or off, as in a real team."""
        for username, role, *_rest, presence in USERS:
            if role in (Role.AGENT, Role.SUPERVISOR):
                User.objects.filter(username=username).update(presence=Presence.ONLINE if online_all else presence)

    def _queues_and_routing(self, teams):
        """Demo routing: SLA targets, office hours, and three rules (docs/routing.md)."""
        care, billing = teams["Care"], teams["Billing"]
        Queue.objects.get_or_create(name="General", defaults={"team": care, "is_default": True,
                                                              "assignment_mode": Queue.AssignmentMode.LEAST_LOADED})
        escalations, _ = Queue.objects.get_or_create(name="Escalations", defaults={"team": care})
        billing_queue, _ = Queue.objects.get_or_create(name="Billing", defaults={
            "team": billing, "is_default": True, "assignment_mode": Queue.AssignmentMode.LEAST_LOADED})
        for team in (care, billing):
            BusinessHours.objects.get_or_create(team=team, defaults={"time_zone": team.time_zone or "UTC"})
        SlaPolicy.objects.get_or_create(name="Standard", queue=None, priority_bucket=None, defaults={
            "first_response_minutes": 60, "next_response_minutes": 30, "resolution_minutes": 24 * 60})
        SlaPolicy.objects.get_or_create(name="Urgent", queue=None, priority_bucket=0, defaults={
            "first_response_minutes": 15, "next_response_minutes": 15, "resolution_minutes": 4 * 60})
        RoutingRule.objects.get_or_create(name="Legal threats and outages to Escalations", defaults={
            "position": 10, "keywords": ["lawyer", "legal action", "outage", "is down"], "set_queue": escalations,
            "set_priority_bucket": 0, "add_tags": ["escalation"]})
        RoutingRule.objects.get_or_create(name="Payments to Billing", defaults={
            "position": 15, "keywords": ["charged", "refund", "invoice", "money back", "discount code"],
            "set_queue": billing_queue, "add_tags": ["billing"]})
        RoutingRule.objects.get_or_create(name="Shout-outs need no reply", defaults={
            "position": 5, "keywords": list(CHATTER_TAGS), "disposition": RoutingRule.Disposition.IGNORE,
            "add_tags": ["shout-out"]})
        RoutingRule.objects.get_or_create(name="Tag refunds", defaults={
            "position": 20, "keywords": ["refund", "charged twice", "money back"], "add_tags": ["refund"]})
