"""The ownership matrix: every object-level endpoint (API and pages), for agent,
supervisor, marketing and admin, on an object of the user's own team, of another
team and (for conversations) an unrouted one (docs/roles.md, Ownership).

The role matrix (test_role_matrix.py) checks who may use a URL at all; this one
checks *whose object*. For every URL with an id parameter (from the resolver:
test_every_id_url_is_in_the_ownership_table fails on a new one) and every
method, with a body that would succeed on the user's own object:

- other team: 404, or the same 403 the role gets on its own team's object (a
  refusal by role says nothing about the object); directory objects (teams,
  users, business hours, rules) are read across teams but not changed. Every
  refused write leaves the database as it was (a snapshot of every team's rows,
  compared inside the request's rolled-back transaction);
- own team: never a 404 (the user reaches their own work);
- unrouted conversation: supervisors and admins reach it, agents get a 404;
- admin: reaches everything.

Each request runs in a transaction that is rolled back, so one write cannot hide
or cause another's answer."""
from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import re

import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client
from django.utils import timezone

from apps.accounts.models import ApiToken, Role, Team, User
from apps.accounts.services import api_token_create
from apps.inbox.models import CannedResponse, Conversation, ConversationEvent, Message, Note, Queue
from apps.routing.models import BusinessHours, Holiday, RoutingRule, SlaPolicy
from tests.factories import (ChannelAccountFactory, ConversationFactory, MessageFactory, QueueFactory, TeamFactory,
                             UserFactory)
from tests.security.test_role_matrix import Route, all_routes

pytestmark = pytest.mark.django_db

AGENT, SUPERVISOR, MARKETING, ADMIN = "agent", "supervisor", "marketing", "admin"
ROLES = (AGENT, SUPERVISOR, MARKETING, ADMIN)
OWN, OTHER, UNROUTED, GLOBAL = "own", "other", "unrouted", "global"

# URL parameters that name an object (others: a report's name, a survey token, a direction...).
ID_PARAMS = {"pk", "id", "message_id", "team_id", "account_id", "object_id", "content_type_id"}
PARAM = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>")


def route_params(route: Route) -> set[str]:
    return {a or b for a, b in PARAM.findall(route.route)}


def id_routes() -> list[Route]:
    return [r for r in all_routes() if route_params(r) & ID_PARAMS]


@dataclasses.dataclass(frozen=True)
class Entry:
    kind: str  # which object family fills the id (the world below has one per team)
    methods: tuple  # the methods tried
    body: dict | None = None  # a body that changes the user's own object (ids filled per user: see _body)
    shared_read: bool = False  # read across teams (directory): GET of another team's is allowed
    scopes: tuple = (OWN, OTHER)
    form: bool = False  # a page: form-encoded body


CONV_SCOPES = (OWN, OTHER, UNROUTED)
FUTURE = (timezone.now() + dt.timedelta(days=2)).isoformat()

# Every URL with an object id, by name (unnamed: by route). A new one fails
# test_every_id_url_is_in_the_ownership_table: add it here (or to EXCLUDED, with the reason).
OWNERSHIP: dict[str, Entry] = {
    # --- conversations, API ---
    "conversation-detail": Entry("conversation", ("GET",), scopes=CONV_SCOPES),
    "conversation-messages": Entry("conversation", ("GET",), scopes=CONV_SCOPES),
    "conversation-reply": Entry("conversation", ("POST",), {"text": "hello from the matrix"}, scopes=CONV_SCOPES),
    "conversation-assign": Entry("conversation", ("POST",), {"assignee": "$me"}, scopes=CONV_SCOPES),
    "conversation-set-status": Entry("conversation", ("POST",), {"status": "pending"}, scopes=CONV_SCOPES),
    "conversation-notes": Entry("conversation", ("POST",), {"text": "matrix note"}, scopes=CONV_SCOPES),
    "conversation-snooze": Entry("conversation", ("POST",), {"until": FUTURE}, scopes=CONV_SCOPES),
    "conversation-tags": Entry("conversation", ("POST",), {"add": ["matrix"]}, scopes=CONV_SCOPES),
    "conversation-priority": Entry("conversation", ("POST",), {"priority": 99}, scopes=CONV_SCOPES),
    "conversation-spam": Entry("conversation", ("POST",), {"spam": True}, scopes=CONV_SCOPES),
    # --- conversations, pages ---
    "inbox:detail": Entry("conversation", ("GET",), scopes=CONV_SCOPES),
    "inbox:live": Entry("conversation", ("GET",), scopes=CONV_SCOPES),
    "inbox:reply": Entry("conversation", ("POST",), {"text": "hello"}, scopes=CONV_SCOPES, form=True),
    "inbox:status": Entry("conversation", ("POST",), {"status": "pending"}, scopes=CONV_SCOPES, form=True),
    "inbox:assign": Entry("conversation", ("POST",), {"assignee": "me"}, scopes=CONV_SCOPES, form=True),
    "inbox:note": Entry("conversation", ("POST",), {"text": "note"}, scopes=CONV_SCOPES, form=True),
    "inbox:snooze": Entry("conversation", ("POST",), {"preset": "1h"}, scopes=CONV_SCOPES, form=True),
    "inbox:tags": Entry("conversation", ("POST",), {"tags": "matrix"}, scopes=CONV_SCOPES, form=True),
    "inbox:priority": Entry("conversation", ("POST",), {"priority_bucket": "0"}, scopes=CONV_SCOPES, form=True),
    "inbox:spam": Entry("conversation", ("POST",), {"spam": "1"}, scopes=CONV_SCOPES, form=True),
    "inbox:presence": Entry("conversation", ("POST",), {"typing": "1"}, scopes=CONV_SCOPES, form=True),
    "inbox:retry": Entry("reply", ("POST",), {}, scopes=CONV_SCOPES, form=True),
    # --- customers ---
    "customer-detail": Entry("customer", ("GET",), scopes=CONV_SCOPES),
    # --- queues, rules, SLA policies, business hours ---
    "queue-detail": Entry("queue", ("GET", "PUT", "PATCH", "DELETE"),
                          {"name": "Renamed", "team": "$own_team", "assignment_mode": "manual"}),
    "rule-detail": Entry("rule", ("GET", "PUT", "PATCH", "DELETE"), {"name": "Renamed", "set_queue": "$own_queue"},
                         shared_read=True, scopes=(OWN, OTHER, GLOBAL)),
    "routing:rule-edit": Entry("rule", ("GET", "POST"), {"name": "Renamed", "position": "5", "hours": "any",
                                                         "visibility": "any", "priority_boost": "0"},
                               scopes=(OWN, OTHER, GLOBAL), form=True),
    "routing:rule-delete": Entry("rule", ("POST",), {}, scopes=(OWN, OTHER, GLOBAL), form=True),
    "routing:rule-move": Entry("rule", ("POST",), {}, scopes=(OWN, OTHER, GLOBAL), form=True),
    "sla-policy-detail": Entry("sla", ("GET", "PUT", "PATCH", "DELETE"),
                               {"name": "Renamed", "first_response_minutes": 7}, scopes=(OWN, OTHER, GLOBAL)),
    "routing:sla-edit": Entry("sla", ("GET", "POST"), {"name": "Renamed", "first_response_minutes": "7"},
                              scopes=(OWN, OTHER, GLOBAL), form=True),
    "routing:sla-delete": Entry("sla", ("POST",), {}, scopes=(OWN, OTHER, GLOBAL), form=True),
    "business-hours-detail": Entry("hours", ("GET", "PUT", "PATCH", "DELETE"),
                                   {"team": "$own_team", "time_zone": "Europe/Paris"}, shared_read=True),
    "routing:hours-edit": Entry("team", ("GET", "POST"), {"time_zone": "Europe/Paris"}, form=True),
    # --- canned responses ---
    "canned-response-detail": Entry("canned", ("GET", "PUT", "PATCH", "DELETE"),
                                    {"shortcut": "renamed", "title": "T", "text": "changed", "team": "$own_team"},
                                    scopes=(OWN, OTHER, GLOBAL)),
    "supervisor:canned-edit": Entry("canned", ("GET", "POST"), {"shortcut": "renamed", "title": "T",
                                                                "text": "changed", "team": "$own_team"},
                                    scopes=(OWN, OTHER, GLOBAL), form=True),
    "supervisor:canned-delete": Entry("canned", ("POST",), {}, scopes=(OWN, OTHER, GLOBAL), form=True),
    # --- people and teams ---
    "user-detail": Entry("agent", ("GET",), shared_read=True),
    "user-capacity": Entry("agent", ("POST",), {"capacity": 3}),
    "user-workload": Entry("agent", ("POST",), {"reason": "matrix"}),
    "supervisor:agent-capacity": Entry("agent", ("POST",), {"capacity": "3"}, form=True),
    "supervisor:agent-workload": Entry("agent", ("POST",), {"reason": "matrix", "confirmed": "1"}, form=True),
    "team-detail": Entry("team", ("GET",), shared_read=True),
    "team-members": Entry("team", ("POST",), {"members": ["$me"]}),
    "supervisor:team": Entry("team", ("GET", "POST"), {"members": ["$me"]}, form=True),
    # --- tokens: the user's own, never another user's ---
    "token-detail": Entry("token", ("GET", "DELETE")),
    "accounts:token-revoke": Entry("token", ("POST",), {}, form=True),
    # --- channel accounts: not a team's (every team answers every account); admins change them ---
    "channel-account-detail": Entry("account", ("GET", "PATCH", "DELETE"), {"name": "renamed"}, scopes=(GLOBAL,)),
    "channel-account-hook-secrets": Entry("account", ("POST",), {}, scopes=(GLOBAL,)),
    "channel-account-poll": Entry("account", ("POST",), {}, scopes=(GLOBAL,)),
    "connectors:poll_now": Entry("account", ("POST",), {}, scopes=(GLOBAL,), form=True),
    "connectors:channel_detail": Entry("account", ("GET",), scopes=(GLOBAL,)),
    "connectors:channel_edit": Entry("account", ("GET", "POST"), {"name": "renamed", "action": "save"},
                                     scopes=(GLOBAL,), form=True),
    "connectors:channel_test": Entry("account", ("POST",), {}, scopes=(GLOBAL,), form=True),
    "connectors:channel_disable": Entry("account", ("GET", "POST"), {"confirm": "on"}, scopes=(GLOBAL,), form=True),
    "connectors:channel_enable": Entry("account", ("POST",), {}, scopes=(GLOBAL,), form=True),
    "connectors:channel_secrets": Entry("account", ("GET", "POST"), {"confirm": "on"}, scopes=(GLOBAL,), form=True),
    "connectors:channel_surveys": Entry("account", ("POST",), {"survey_auto": "nps", "survey_cap_days": "7"},
                                       scopes=(GLOBAL,), form=True),
}

EXCLUDED = {
    "admin:*": "the Django admin: staff (admins) only, who see everything (test_role_matrix.py)",
    "admin/*": "the Django admin's unnamed object redirects: staff only",
    "hook_receive": "a network's push delivery: no user, a signature per account (tests/connectors)",
    "reports:alert_acknowledge": "a spike alert is the brand's, no team's: supervisors and admins acknowledge "
                                 "it for all, marketing dismisses it for themselves, agents get 403 "
                                 "(tests/reports/test_report_pages.py)",
}


def _excluded(key: str) -> bool:
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in EXCLUDED)


# --- the world: two teams, an unrouted conversation, global configuration ---------------------------------

@pytest.fixture
def world(db, settings):
    # the Channels pages' "Test connection" calls the network: a closed local port answers at once
    settings.TWITTER_API_BASE_URL = "http://127.0.0.1:9"
    teams = {OWN: TeamFactory(name="Care"), OTHER: TeamFactory(name="Billing")}
    users = {AGENT: UserFactory(role=Role.AGENT), SUPERVISOR: UserFactory(role=Role.SUPERVISOR),
             MARKETING: UserFactory(role=Role.MARKETING),
             ADMIN: UserFactory(role=Role.ADMIN, is_staff=True, is_superuser=True)}
    teams[OWN].members.add(users[AGENT], users[SUPERVISOR])
    teams[OWN].leads.add(users[SUPERVISOR])
    other_agent, other_lead = UserFactory(role=Role.AGENT), UserFactory(role=Role.SUPERVISOR)
    teams[OTHER].members.add(other_agent, other_lead)
    teams[OTHER].leads.add(other_lead)
    account = ChannelAccountFactory()
    objects: dict[str, dict] = {k: {} for k in ("conversation", "reply", "customer", "queue", "rule", "sla",
                                                "canned", "hours", "team", "agent", "account")}
    for scope in (OWN, OTHER, UNROUTED):
        queue = None
        if scope != UNROUTED:
            queue = QueueFactory(team=teams[scope], name=f"{scope} queue", is_default=True)
            objects["queue"][scope] = queue
        conv = ConversationFactory(channel_account=account, queue=queue, status="open")
        MessageFactory(conversation=conv, text=f"secret of {scope}")
        reply = MessageFactory(conversation=conv, direction="out", text="our reply", send_status="failed")
        objects["conversation"][scope], objects["reply"][scope] = conv, reply
        objects["customer"][scope] = conv.customer
    for scope in (OWN, OTHER):
        team, queue = teams[scope], objects["queue"][scope]
        objects["team"][scope] = team
        objects["agent"][scope] = users[AGENT] if scope == OWN else other_agent
        objects["rule"][scope] = RoutingRule.objects.create(name=f"{scope} rule", set_queue=queue, position=10)
        objects["sla"][scope] = SlaPolicy.objects.create(name=f"{scope} sla", queue=queue, first_response_minutes=30)
        objects["canned"][scope] = CannedResponse.objects.create(shortcut=f"{scope}1", title="t", text="x",
                                                                 team=team)
        objects["hours"][scope] = BusinessHours.objects.create(team=team, time_zone="UTC")
    objects["rule"][GLOBAL] = RoutingRule.objects.create(name="global rule", keywords=["spam"], position=30)
    objects["sla"][GLOBAL] = SlaPolicy.objects.create(name="global sla", first_response_minutes=60)
    objects["canned"][GLOBAL] = CannedResponse.objects.create(shortcut="hello", title="t", text="x", team=None)
    objects["account"][GLOBAL] = account
    tokens = {role: api_token_create(user=user, name="mine")[0] for role, user in users.items()}
    tokens[OTHER] = api_token_create(user=other_agent, name="theirs")[0]
    return {"users": users, "teams": teams, "objects": objects, "tokens": tokens}


def _object_id(world, entry: Entry, scope: str, role: str) -> int:
    if entry.kind == "token":
        return (world["tokens"][role] if scope == OWN else world["tokens"][OTHER]).pk
    return world["objects"][entry.kind][scope].pk


def _path(route: Route, world, entry: Entry, scope: str, role: str) -> str:
    pk = _object_id(world, entry, scope, role)
    values = {"pk": pk, "team_id": pk, "direction": "up"}
    if entry.kind == "reply":
        values = {"pk": world["objects"]["conversation"][scope].pk, "message_id": pk}

    def sub(m):
        return str(values.get(m.group(1) or m.group(2), "1"))

    path = re.sub(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>[^)]*\)", sub, route.route)
    return "/" + path.replace("^", "").replace("$", "").lstrip("/")


def _body(entry: Entry, world, role: str):
    me = world["users"][role]
    fill = {"$me": me.pk, "$own_team": world["teams"][OWN].pk, "$own_queue": world["objects"]["queue"][OWN].pk}

    def value(v):
        if isinstance(v, list):
            return [value(x) for x in v]
        return fill.get(v, v) if isinstance(v, str) else v

    return {k: value(v) for k, v in (entry.body or {}).items()}


def snapshot() -> dict:
    """Every row a cross-team request could change (time stamps and presence aside)."""
    def rows(qs, *fields):
        return sorted(qs.values_list(*fields))

    return {
        "conversations": rows(Conversation.objects, "pk", "status", "assignee_id", "queue_id", "snoozed_until",
                              "is_spam", "priority", "priority_bucket"),
        "tags": rows(Conversation.tags.through.objects, "conversation_id", "tag_id"),
        "messages": rows(Message.objects, "pk", "conversation_id", "send_status", "text"),
        "notes": rows(Note.objects, "pk", "conversation_id"),
        "events": rows(ConversationEvent.objects, "pk"),
        "queues": rows(Queue.objects, "pk", "name", "team_id", "is_default", "assignment_mode"),
        "rules": rows(RoutingRule.objects, "pk", "name", "position", "set_queue_id", "is_active"),
        "sla": rows(SlaPolicy.objects, "pk", "name", "queue_id", "first_response_minutes", "is_active"),
        "canned": rows(CannedResponse.objects, "pk", "shortcut", "text", "team_id"),
        "hours": rows(BusinessHours.objects, "pk", "team_id", "time_zone"),
        "holidays": rows(Holiday.objects, "pk"),
        "members": rows(Team.members.through.objects, "team_id", "user_id"),
        "leads": rows(Team.leads.through.objects, "team_id", "user_id"),
        "users": rows(User.objects, "pk", "capacity", "channel_capacity", "is_active", "role"),
        "tokens": rows(ApiToken.objects, "pk", "revoked_at"),
    }


@dataclasses.dataclass
class Answer:
    status: int
    text: str
    changed: bool


def _send(client, method, path, body, form) -> Answer:
    cookie = client.cookies.get(settings.SESSION_COOKIE_NAME)
    saved = cookie.value if cookie is not None else None
    with transaction.atomic():
        before = snapshot()
        if method == "GET":
            resp = client.get(path)
        elif form:
            resp = getattr(client, method.lower())(path, body)
        else:
            resp = getattr(client, method.lower())(path, body, content_type="application/json")
        changed = snapshot() != before
        transaction.set_rollback(True)
    if saved is not None:
        client.cookies[settings.SESSION_COOKIE_NAME] = saved
    text = resp.content.decode(errors="replace") if not getattr(resp, "streaming", False) else ""
    return Answer(resp.status_code, text, changed)


def _clients(world) -> dict:
    clients = {}
    for role, user in world["users"].items():
        clients[role] = Client()
        clients[role].force_login(user)
    return clients


def _problems(key, entry, role, method, answers: dict[str, Answer]) -> list[str]:
    """What breaks ownership in one (URL, role, method)'s answers per scope."""
    out = []
    where = f"{method} {key} as {role}"
    own = answers.get(OWN) or answers.get(GLOBAL)
    for scope, a in answers.items():
        if a.status >= 500:
            out.append(f"{where} on the {scope} object: {a.status}")
    if OTHER in answers:
        a = answers[OTHER]
        refused_by_role = own.status in (401, 403) or (own.status == 302 and "login" in own.text)
        if role == ADMIN:
            if a.status == 404 and entry.kind != "token":  # tokens are personal, even to an admin
                out.append(f"{where}: the admin gets 404 on another team's object")
        elif method == "GET" and entry.shared_read:
            pass  # a directory object: read across teams
        elif entry.shared_read or entry.kind in ("team", "token"):
            # shared objects are changed by their own team only; a 403 (or 404) and nothing changed
            if a.status not in (400, 403, 404):
                out.append(f"{where} on another team's/user's object: {a.status}, expected a refusal")
        elif refused_by_role:
            if a.status != own.status:
                out.append(f"{where}: {a.status} on another team's object, {own.status} on its own: "
                           "the answer tells them apart")
        elif a.status != 404:
            out.append(f"{where}: {a.status} on another team's object, expected 404")
        if a.changed and role != ADMIN:
            out.append(f"{where}: another team's data changed")
        if "secret of other" in a.text and role != ADMIN:
            out.append(f"{where}: another team's conversation text leaked")
    if role == MARKETING:
        for scope, a in answers.items():
            if entry.kind != "token" and a.status not in (302, 403) and not (a.status == 404 and scope != OWN):
                out.append(f"{where} on the {scope} object: {a.status}, marketing should be refused")
            if a.changed and entry.kind != "token":
                out.append(f"{where} on the {scope} object: marketing changed data")
    elif own is not None and own.status == 404:
        out.append(f"{where}: 404 on their own team's object")
    if UNROUTED in answers:
        a = answers[UNROUTED]
        if role == AGENT and a.status != 404:
            out.append(f"{where} on an unrouted conversation: {a.status}, agents should get 404")
        if role == AGENT and a.changed:
            out.append(f"{where}: an unrouted conversation changed")
        if role in (SUPERVISOR, ADMIN) and a.status == 404:
            out.append(f"{where} on an unrouted conversation: 404, supervisors triage them")
    return out


# --- the tests --------------------------------------------------------------------------------------------

def test_every_id_url_is_in_the_ownership_table():
    missing = sorted({r.key for r in id_routes() if r.key not in OWNERSHIP and not _excluded(r.key)})
    assert not missing, (
        "These URLs take an object id but are not in OWNERSHIP (tests/security/test_ownership_matrix.py): "
        "say whose object the id names and what each role may do with another team's:\n  " + "\n  ".join(missing))
    stale = sorted(k for k in OWNERSHIP if k not in {r.key for r in id_routes()})
    assert not stale, f"OWNERSHIP names URLs that no longer take an id: {stale}"


def test_the_table_names_every_kind_of_object_level_endpoint():
    """The issue's list, so that a rename of a family does not drop it silently."""
    families = {k.split("-")[0].split(":")[-1] for k in OWNERSHIP}
    for family in ("conversation", "queue", "rule", "sla", "canned", "customer", "user", "team", "channel",
                   "token", "detail", "business"):
        assert any(f.startswith(family) for f in families), family


@pytest.mark.parametrize("role", ROLES)
def test_no_cross_team_read_or_write(world, role, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    routes = {r.key: r for r in id_routes()}
    client = _clients(world)[role]
    failures, checked = [], 0
    for key, entry in OWNERSHIP.items():
        route = routes[key]
        for method in entry.methods:
            answers = {}
            for scope in entry.scopes:
                path = _path(route, world, entry, scope, role)
                answers[scope] = _send(client, method, path, _body(entry, world, role), entry.form)
                checked += 1
            failures += _problems(key, entry, role, method, answers)
    assert not failures, f"{len(failures)} ownership breaks in {checked} requests as {role}:\n" + "\n".join(
        failures)
    assert checked > 100


def test_ids_in_filters_and_bodies_stay_within_the_team(world):
    """Ids that come in a query string or a body, not the path: the list's queue
    filter, the audit log's conversation filter, a bulk move's ids."""
    clients = _clients(world)
    theirs = world["objects"]["conversation"][OTHER]
    ConversationEvent.objects.create(conversation=theirs, kind="status_changed", data={"new": "open"})
    their_queue = world["objects"]["queue"][OTHER]
    for role in (AGENT, SUPERVISOR):
        c = clients[role]
        assert c.get(f"/api/v1/conversations/?queue={their_queue.pk}").json()["results"] == [], role
        assert "secret of other" not in c.get(f"/inbox/?queue={their_queue.pk}").content.decode(), role
    c = clients[SUPERVISOR]
    assert c.get(f"/api/v1/audit/?conversation={theirs.pk}").json()["results"] == []
    assert f"#{theirs.pk}" not in c.get(f"/supervisor/audit/?conversation={theirs.pk}").content.decode()
    resp = c.post("/api/v1/conversations/bulk-assign/", {"ids": [theirs.pk], "to": {
        "agent": world["users"][AGENT].pk}, "reason": "x"}, content_type="application/json")
    assert resp.status_code in (200, 400) and Conversation.objects.get(pk=theirs.pk).assignee_id is None
    # "all matching" is all matching *that the user sees*: the other team's open conversation stays
    resp = c.post("/api/v1/conversations/bulk-assign/", {"filter": {"status": "open"}, "to": {
        "agent": world["users"][AGENT].pk}, "reason": "x"}, content_type="application/json")
    assert resp.status_code == 200 and Conversation.objects.get(pk=theirs.pk).assignee_id is None
