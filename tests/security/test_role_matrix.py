"""Every URL, every role: the answer must match the policy table.

The test walks the URL resolver of cxinbox.urls, so a URL added anywhere is
covered automatically, and a URL with no entry in POLICY fails the suite with
a message saying where to classify it. For each URL and each role (and an
anonymous visitor) it sends the methods the view takes, with an empty body,
each request inside a rolled-back transaction, and checks:

- anonymous: pages answer 302 to the login page, APIs 401;
- a role the policy does not allow: 403 (the Django admin: 302 to its login);
- a role it allows: anything but 401/403/a login redirect/5xx (a 404 or 400 is
  fine: the role got past the role check and the view looked at the object or
  the empty input).

Object-level checks (another team's conversation by id) are in
tests/security (reliability helper) and tests/inbox; this is the role gate."""
from __future__ import annotations

import dataclasses
import fnmatch
import re

import pytest
from django.conf import settings
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver

from apps.accounts.models import Role
from apps.accounts.services import api_token_create
from tests.factories import (
    ChannelAccountFactory,
    ConversationFactory,
    MessageFactory,
    QueueFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ANON, AGENT, SUPERVISOR, MARKETING, ADMIN = "anonymous", "agent", "supervisor", "marketing", "admin"
ROLES = (ANON, MARKETING, AGENT, SUPERVISOR, ADMIN)
EVERYONE = frozenset(ROLES)
SIGNED_IN = frozenset({AGENT, SUPERVISOR, MARKETING, ADMIN})
WORKING = frozenset({AGENT, SUPERVISOR, ADMIN})
SUPERVISORS = frozenset({SUPERVISOR, ADMIN})
ADMINS = frozenset({ADMIN})
REPORT_READERS = frozenset({SUPERVISOR, MARKETING, ADMIN})
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


@dataclasses.dataclass(frozen=True)
class Policy:
    read: frozenset  # GET
    write: frozenset | None = None  # POST/PUT/PATCH/DELETE; None: same as read
    admin_site: bool = False  # Django admin: refusals are a 302 to the admin login
    signed: bool = False  # webhooks: no login, a signature instead; unsigned requests get a 4xx from anyone
    to_login: bool = False  # its normal answer is a redirect to the login page (logout)
    may_be_503: bool = False  # reports the health of other services: 503 when one is down is its answer
    kwargs: tuple = ()  # URL parameters to use instead of the defaults, e.g. (("name", "service"),)

    def allows(self, role: str, method: str) -> bool:
        roles = self.write if (method in WRITE_METHODS and self.write is not None) else self.read
        return role in roles


PUBLIC = Policy(EVERYONE)
SIGNED_WEBHOOK = Policy(EVERYONE, signed=True)
ADMIN_SITE = Policy(ADMINS, admin_site=True)

# URL name (namespace:name; DRF's format-suffix twins share their name) -> who may use it.
# Unnamed patterns are keyed by their route. A new URL must be added here: decide who may use it.
POLICY: dict[str, Policy] = {
    # public
    "home": Policy(EVERYONE, to_login=True),  # each role to its start page; a stranger to the login
    "healthz": Policy(EVERYONE, may_be_503=True),
    # Prometheus: a bearer token or an address allow-list, never a login (404 unless configured; tests/ops)
    "metrics": Policy(EVERYONE, signed=True),
    "login": PUBLIC,
    "favicon": PUBLIC,  # a redirect to the static icon
    "logout": Policy(EVERYONE, to_login=True),
    "survey": PUBLIC,  # signed token in the URL: the customer's CSAT page
    "schema": PUBLIC,  # the OpenAPI description: no data in it
    "api-docs": PUBLIC,
    # the web inbox: working roles (marketing reads reports only)
    "inbox:*": Policy(WORKING),
    # the API: conversations and customers (PII) for working roles
    "api-root": Policy(SIGNED_IN),
    "conversation-*": Policy(WORKING),
    # the inbox actions (issue 4): like reply/assign/status, working roles; the object check is a 404
    "conversation-snooze": Policy(WORKING),
    "conversation-tags": Policy(WORKING),
    "conversation-priority": Policy(WORKING),
    "conversation-spam": Policy(WORKING),
    "customer-*": Policy(WORKING),
    "queue-list": Policy(WORKING, SUPERVISORS),
    "queue-detail": Policy(WORKING, SUPERVISORS),
    "canned-response-list": Policy(WORKING, SUPERVISORS),
    "canned-response-detail": Policy(WORKING, SUPERVISORS),
    "channel-account-list": Policy(ADMINS),
    "channel-account-detail": Policy(ADMINS),
    "channel-account-health": Policy(SUPERVISORS),
    "channel-account-poll": Policy(SUPERVISORS),
    "channel-account-hook-secrets": Policy(ADMINS),
    # accounts (issue 5)
    "user-list": Policy(WORKING),
    "user-detail": Policy(WORKING),
    "user-me": Policy(SIGNED_IN),
    "user-presence": Policy(SIGNED_IN),
    "user-capacity": Policy(SUPERVISORS),
    "user-workload": Policy(SUPERVISORS),
    "team-list": Policy(WORKING, ADMINS),
    "team-detail": Policy(WORKING, ADMINS),
    "team-members": Policy(SUPERVISORS),
    "token-list": Policy(SIGNED_IN),
    "token-detail": Policy(SIGNED_IN),
    "accounts:*": Policy(SIGNED_IN),
    "supervisor:*": Policy(SUPERVISORS),
    "api-bulk-assign": Policy(SUPERVISORS),
    "api-supervisor-dashboard": Policy(SUPERVISORS),
    "api-audit": Policy(SUPERVISORS),
    # reports (issue 6): supervisors, marketing and admins; not agents
    "reports:index": Policy(REPORT_READERS),
    "reports:page": Policy(REPORT_READERS, kwargs=(("name", "service"),)),
    # supervisors/admins acknowledge a spike alert for all, marketing dismisses it for themselves
    "reports:alert_acknowledge": Policy(REPORT_READERS),
    "api-report": Policy(REPORT_READERS, kwargs=(("name", "service"),)),
    # connectors (issue 7): health for supervisors; push hooks authenticate by signature, not login
    "connectors:health": Policy(SUPERVISORS),
    "connectors:poll_now": Policy(SUPERVISORS),
    # the Channels pages: connecting a network, credentials, pausing: admins (docs/roles.md)
    "connectors:channels": Policy(ADMINS),
    "connectors:channel_connect": Policy(ADMINS),
    "connectors:channel_new": Policy(ADMINS, kwargs=(("provider", "webhook"),)),
    "connectors:channel_detail": Policy(ADMINS),
    "connectors:channel_edit": Policy(ADMINS),
    "connectors:channel_test": Policy(ADMINS),
    "connectors:channel_disable": Policy(ADMINS),
    "connectors:channel_enable": Policy(ADMINS),
    "connectors:channel_secrets": Policy(ADMINS),
    "connectors:channel_surveys": Policy(ADMINS),
    "hook_receive": SIGNED_WEBHOOK,
    # routing (issue 3): supervisors edit, agents read
    "rule-list": Policy(WORKING, SUPERVISORS),
    "rule-detail": Policy(WORKING, SUPERVISORS),
    "rule-reorder": Policy(WORKING, SUPERVISORS),
    "sla-policy-list": Policy(WORKING, SUPERVISORS),
    "sla-policy-detail": Policy(WORKING, SUPERVISORS),
    "business-hours-list": Policy(WORKING, SUPERVISORS),
    "business-hours-detail": Policy(WORKING, SUPERVISORS),
    "routing:rules": Policy(SUPERVISORS),
    "routing:rule-new": Policy(SUPERVISORS),
    "routing:rule-edit": Policy(SUPERVISORS),
    "routing:rule-delete": Policy(SUPERVISORS),
    "routing:rule-move": Policy(SUPERVISORS),
    "routing:sla": Policy(SUPERVISORS),
    "routing:sla-edit": Policy(SUPERVISORS),
    "routing:sla-delete": Policy(SUPERVISORS),
    "routing:hours": Policy(SUPERVISORS),
    "routing:hours-edit": Policy(SUPERVISORS),
    # Django admin: staff only, whatever the page
    "admin:login": PUBLIC,
    "admin:logout": Policy(EVERYONE, to_login=True),
    "admin:*": ADMIN_SITE,
    "admin/*": ADMIN_SITE,  # its unnamed object-id redirects and catch-all
}


# --- walking the resolver --------------------------------------------------------------------------------

@dataclasses.dataclass
class Route:
    key: str  # the name, or the route when unnamed
    route: str
    pattern: URLPattern
    is_regex: bool


def walk(patterns, prefix="", namespace="", regex=False):
    for p in patterns:
        is_regex = regex or p.pattern.__class__.__name__ == "RegexPattern"
        if isinstance(p, URLResolver):
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            yield from walk(p.url_patterns, prefix + str(p.pattern), ns, is_regex)
        else:
            route = prefix + str(p.pattern)
            yield Route(key=f"{namespace}{p.name}" if p.name else route, route=route, pattern=p, is_regex=is_regex)


def all_routes() -> list[Route]:
    return list(walk(get_resolver().url_patterns))


def policy_for(key: str) -> Policy | None:
    if key in POLICY:
        return POLICY[key]
    for pattern, policy in POLICY.items():
        if "*" in pattern and fnmatch.fnmatchcase(key, pattern):
            return policy
    return None


PARAM = re.compile(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>|\(\?P<(?P<rname>\w+)>[^)]*\)")


def build_path(route: Route, values: dict) -> str:
    def sub(m):
        name = m.group("name") or m.group("rname")
        return str(values.get(name, "1"))

    path = PARAM.sub(sub, route.route)
    path = path.replace("^", "").replace("$", "").replace("\\.", ".").replace("/?", "/")
    return "/" + path.lstrip("/")


def methods_for(route: Route) -> list[str] | None:
    """The methods a DRF view takes; None for a Django view (found out by trying)."""
    callback = route.pattern.callback
    actions = getattr(callback, "actions", None)
    if actions:
        return [m.upper() for m in actions]
    cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if cls is not None and hasattr(cls, "permission_classes"):
        return [m.upper() for m in ("get", "post", "put", "patch", "delete") if hasattr(cls, m)]
    return None


# --- the world the requests run in ---------------------------------------------------------------------

@pytest.fixture
def world(db, settings):
    # the Channels pages' "Test connection" calls the network: a closed local port answers at once
    settings.TWITTER_API_BASE_URL = "http://127.0.0.1:9"
    team = TeamFactory(name="Care")
    queue = QueueFactory(team=team, is_default=True)
    users = {
        AGENT: UserFactory(role=Role.AGENT),
        SUPERVISOR: UserFactory(role=Role.SUPERVISOR),
        MARKETING: UserFactory(role=Role.MARKETING),
        ADMIN: UserFactory(role=Role.ADMIN, is_staff=True, is_superuser=True),
    }
    team.members.add(users[AGENT], users[SUPERVISOR])
    team.leads.add(users[SUPERVISOR])
    account = ChannelAccountFactory()
    conversation = ConversationFactory(channel_account=account, queue=queue, assignee=users[AGENT])
    message = MessageFactory(conversation=conversation)
    from apps.inbox.models import CannedResponse

    canned = CannedResponse.objects.create(shortcut="late", title="Late", text="Sorry!", team=team)
    token, _ = api_token_create(user=users[ADMIN], name="matrix")
    values = {
        "pk": conversation.pk, "message_id": message.pk, "format": "json", "token": "not-a-real-token",
        "object_id": str(conversation.pk), "url": "nowhere/", "name": "service", "provider": "twitter",
        "account": account.pk, "account_id": account.pk, "app_label": "inbox", "team_id": team.pk,
        "direction": "up",
    }
    # URL families whose pk is not a conversation
    pk_by_prefix = {
        "queue-": queue.pk, "canned-response-": canned.pk, "supervisor:canned": canned.pk,
        "customer-": conversation.customer_id, "channel-account-": account.pk, "connectors:channel_": account.pk, "user-": users[AGENT].pk,
        "supervisor:agent": users[AGENT].pk, "team-": team.pk, "supervisor:team": team.pk, "token-": token.pk,
        "accounts:token": token.pk,
    }
    return {"users": users, "values": values, "pk_by_prefix": pk_by_prefix}


def values_for(route: Route, world, policy: Policy) -> dict:
    values = dict(world["values"])
    for prefix, pk in world["pk_by_prefix"].items():
        if route.key.startswith(prefix):
            values["pk"] = pk
            break
    values.update(dict(policy.kwargs))
    return values


def _is_login_redirect(resp) -> bool:
    return resp.status_code in (301, 302) and "login" in resp.get("Location", "")


def _is_api(path: str) -> bool:
    return path.startswith("/api/")


def _request(client, method, path):
    # Each request in a transaction that is rolled back: a DELETE or a logout
    # here cannot change what the next request sees. A logout also hands the
    # client a new session cookie: put the signed-in one back.
    cookie = client.cookies.get(settings.SESSION_COOKIE_NAME)
    saved = cookie.value if cookie is not None else None
    with transaction.atomic():
        resp = getattr(client, method.lower())(path, content_type="application/json") if method != "GET" \
            else client.get(path)
        transaction.set_rollback(True)
    if saved is not None:
        client.cookies[settings.SESSION_COOKIE_NAME] = saved
    return resp


def _check(route, policy, role, method, path, resp) -> str | None:
    status = resp.status_code
    where = f"{method} {path} ({route.key}) as {role}: {status}"
    if status >= 500 and not (status == 503 and policy.may_be_503):
        return f"{where}: server error"
    if policy.signed:
        return None if 400 <= status < 500 else f"{where}: an unsigned delivery must be refused with a 4xx"
    if policy.allows(role, method):
        if policy.admin_site:  # staff: the admin site let them in; a 403 there is about the input
            return f"{where}: staff sent to the login" if _is_login_redirect(resp) else None
        if status in (401, 403) or (_is_login_redirect(resp) and not policy.to_login):
            return f"{where}: refused, but the policy allows {role}"
        return None
    if role == ANON:
        if policy.admin_site or not _is_api(path):
            ok = _is_login_redirect(resp)
        else:
            ok = status == 401
        return None if ok else f"{where}: anonymous should get {'401' if _is_api(path) else 'a login redirect'}"
    if policy.admin_site:
        return None if _is_login_redirect(resp) else f"{where}: non-staff should be sent to the admin login"
    return None if status == 403 else f"{where}: should be 403 for {role}"


# --- the tests ---------------------------------------------------------------------------------------

def test_every_url_has_a_policy_entry():
    missing = sorted({r.key for r in all_routes() if policy_for(r.key) is None})
    assert not missing, (
        "These URLs have no entry in POLICY (tests/security/test_role_matrix.py). Decide who may use "
        "each one (anonymous, agent, supervisor, marketing, admin) and add it:\n  " + "\n  ".join(missing)
    )


def test_policy_table_has_no_stale_entries():
    keys = {r.key for r in all_routes()}
    stale = [k for k in POLICY if "*" not in k and k not in keys]
    assert not stale, f"POLICY names URLs that no longer exist: {stale}"


def test_every_url_answers_every_role_as_the_policy_says(world, client, django_user_model):
    from django.test import Client

    clients = {ANON: Client()}
    for role, user in world["users"].items():
        clients[role] = Client()
        clients[role].force_login(user)
    failures, checked = [], 0
    for route in all_routes():
        policy = policy_for(route.key)
        if policy is None:
            continue  # reported by test_every_url_has_a_policy_entry
        path = build_path(route, values_for(route, world, policy))
        methods, probe = methods_for(route), None
        if methods is None:
            # A Django view: GET, or POST when it only takes POST (405 to the admin's GET).
            probe = _request(clients[ADMIN], "GET", path)
            methods = ["POST"] if probe.status_code == 405 else ["GET"]
        for method in methods:
            for role in ROLES:
                if probe is not None and method == "GET" and role == ADMIN:
                    resp = probe  # the admin's GET was the probe: no need to render it twice
                else:
                    resp = _request(clients[role], method, path)
                checked += 1
                problem = _check(route, policy, role, method, path, resp)
                if problem:
                    failures.append(problem)
    assert not failures, f"{len(failures)} of {checked} answers break the policy:\n" + "\n".join(failures[:60])
    assert checked > 300  # the walk really walked (the admin GET probe counts as the admin answer)


def test_build_path_fills_route_and_regex_parameters():
    routes = {r.key: r for r in all_routes()}
    assert build_path(routes["inbox:detail"], {"pk": 7}) == "/inbox/c/7/"
    detail = next(r for r in all_routes() if r.key == "conversation-detail" and "format" not in r.route)
    assert build_path(detail, {"pk": 7}) == "/api/v1/conversations/7/"
