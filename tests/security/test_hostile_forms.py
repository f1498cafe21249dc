"""Every HTML form POST of the product under hostile input (issue 18): NUL bytes,
lone surrogates, 100k characters, markup, non-numeric / unknown / deleted ids,
missing fields. Each answer is a form error, a flash message, a redirect or a
4xx, never a 500; what a user typed comes back escaped; nothing with a NUL
reaches PostgreSQL (text or jsonb)."""
from __future__ import annotations

from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import ApiToken, AuditEntry
from apps.inbox.models import CannedResponse, ConversationEvent, Message, Note
from apps.routing.models import BusinessHours, RoutingRule, SlaPolicy
from tests.factories import ConversationFactory, MessageFactory, QueueFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
HOSTILE = [
    "a\x00b",                      # NUL: PostgreSQL text and jsonb refuse it
    "\x00",
    "a\ud800b",                    # a lone surrogate (sent as its UTF-8-ish bytes)
    "x" * 100_000,
    SCRIPT,
    "abc",                         # where an id or number is expected
    "-1",
    "99999999999999999999",
    "1e309",
    "",
    " ",
    "0,1,2",
    "a=\x00,\x00=1",               # capacity-style key=value lists
    "9999999",                     # an id that does not exist (deleted)
]


def _encode(data: dict) -> str:
    """Form-encode, lone surrogates included (as a browser would never, a script may)."""
    parts = []
    for key, values in data.items():
        for value in values if isinstance(values, list) else [values]:
            parts.append(quote(str(key), safe="", errors="surrogatepass") + "="
                         + quote(str(value), safe="", errors="surrogatepass"))
    return "&".join(parts)


def _post(client, url, data):
    return client.post(url, _encode(data), content_type="application/x-www-form-urlencoded")


@pytest.fixture
def world(team, queue, agent, supervisor, admin_user, twitter_account):
    conversation = ConversationFactory(channel_account=twitter_account, queue=queue, assignee=agent, status="open")
    MessageFactory(conversation=conversation)
    failed = MessageFactory(conversation=conversation, direction="out", author_identity=None, author_user=agent,
                            send_status="failed", text="reply that failed")
    canned = CannedResponse.objects.create(shortcut="thanks", title="Thanks", text="Thank you!", team=team)
    rule = RoutingRule.objects.create(name="VIPs", position=1)
    policy = SlaPolicy.objects.create(name="Standard", queue=queue, first_response_minutes=60)
    other_team = TeamFactory()
    QueueFactory(team=other_team)
    return {"conversation": conversation, "failed": failed, "canned": canned, "rule": rule, "policy": policy,
            "team": team, "queue": queue, "agent": agent, "supervisor": supervisor, "admin": admin_user,
            "account": twitter_account, "other_team": other_team}


def _forms(w):
    """(who posts, url, a valid form) for every HTML form POST of the product."""
    c, team, agent = w["conversation"], w["team"], w["agent"]
    rule_form = {"name": "Rule", "is_active": "on", "channels": "twitter", "channel_accounts": str(w["account"].pk),
                 "keywords": "refund, late", "regex": "order", "languages": "en", "sentiments": "negative",
                 "min_followers": "0", "max_followers": "100", "customer_tags": "vip", "customer_tiers": "vip",
                 "hours": "any", "hours_team": str(team.pk), "visibility": "any", "set_queue": str(w["queue"].pk),
                 "set_priority_bucket": "1", "priority_boost": "5", "add_tags": "refund",
                 "assign_agent": str(agent.pk), "assign_team": str(team.pk), "auto_reply": str(w["canned"].pk),
                 "disposition": "", "stop": "on"}
    sla_form = {"name": "Gold", "queue": str(w["queue"].pk), "priority_bucket": "0", "first_response_minutes": "30",
                "next_response_minutes": "60", "resolution_minutes": "600", "business_hours_only": "on",
                "is_active": "on"}
    hours_form = {"time_zone": "Europe/Berlin", "mon": "09:00-17:00", "tue": "09:00-12:00, 13:00-17:00", "wed": "",
                  "thu": "09:00-17:00", "fri": "09:00-17:00", "sat": "", "sun": "",
                  "holidays": "2026-12-25 Christmas Day"}
    canned_form = {"shortcut": "sorry", "title": "Sorry", "text": "We are sorry.", "team": str(team.pk)}
    return [
        ("agent", reverse("inbox:reply", args=[c.pk]), {"text": "Hello", "private": "", "signature": "on",
                                                        "draft_started_at": "", "reply_token": "abcdefgh1234"}),
        ("agent", reverse("inbox:note", args=[c.pk]), {"text": "a note for @someone"}),
        ("agent", reverse("inbox:tags", args=[c.pk]), {"tags": "billing, refund"}),
        ("agent", reverse("inbox:status", args=[c.pk]), {"status": "pending", "send_survey": "", "next": "list"}),
        ("agent", reverse("inbox:assign", args=[c.pk]), {"assignee": str(agent.pk), "reason": "mine"}),
        ("agent", reverse("inbox:snooze", args=[c.pk]), {"preset": "", "until": "2030-01-01T09:00", "wake": ""}),
        ("agent", reverse("inbox:priority", args=[c.pk]), {"priority_bucket": "1", "reason": "angry"}),
        ("agent", reverse("inbox:presence", args=[c.pk]), {"typing": "1", "active": "1"}),
        ("agent", reverse("inbox:notifications_read"), {"id": "1"}),
        ("agent", reverse("inbox:retry", args=[c.pk, w["failed"].pk]), {}),
        ("agent", reverse("inbox:spam", args=[c.pk]), {"spam": "0"}),
        ("agent", reverse("accounts:presence"), {"presence": "online", "next": "/inbox/"}),
        ("agent", reverse("accounts:tokens"), {"name": "my script"}),
        ("supervisor", reverse("supervisor:agent-capacity", args=[agent.pk]),
         {"capacity": "5", "channel_capacity": "twitter=3, email=2"}),
        ("supervisor", reverse("supervisor:agent-workload", args=[agent.pk]),
         {"to": f"team:{team.pk}", "reason": "leave", "go_offline": "", "confirmed": "1"}),
        ("admin", reverse("supervisor:teams"), {"name": "Night shift", "time_zone": "Europe/Berlin"}),
        ("supervisor", reverse("supervisor:team", args=[team.pk]),
         {"members": [str(agent.pk), str(w["supervisor"].pk)], "leads": str(w["supervisor"].pk)}),
        ("admin", reverse("supervisor:team", args=[team.pk]),
         {"members": [str(agent.pk), str(w["supervisor"].pk)], "leads": str(w["supervisor"].pk)}),
        ("supervisor", reverse("supervisor:reassign"),
         {"to": f"agent:{agent.pk}", "reason": "balance", "scope": "", "ids": str(c.pk), "querystring": "status=open",
          "status": "open", "queue": str(w["queue"].pk), "assignee": str(agent.pk), "priority": "1",
          "channel": "twitter", "tag": "vip", "q": "order", "view": "mine"}),
        ("supervisor", reverse("supervisor:reassign"),
         {"to": f"queue:{w['queue'].pk}", "scope": "all", "q": "order", "status": "open"}),
        ("supervisor", reverse("supervisor:canned"), canned_form),
        ("supervisor", reverse("supervisor:canned-edit", args=[w["canned"].pk]), canned_form),
        ("supervisor", reverse("routing:rule-new"), rule_form),
        ("admin", reverse("routing:rule-edit", args=[w["rule"].pk]), rule_form),
        ("supervisor", reverse("routing:sla"), sla_form),
        ("supervisor", reverse("routing:sla-edit", args=[w["policy"].pk]), sla_form),
        ("supervisor", reverse("routing:hours-edit", args=[team.pk]), hours_form),
        ("supervisor", reverse("connectors:poll_now", args=[w["account"].pk]), {}),
        ("admin", reverse("routing:rule-move", args=[w["rule"].pk, "up"]), {}),
    ]


def _clients(w):
    clients = {}
    for role in ("agent", "supervisor", "admin"):
        clients[role] = Client(raise_request_exception=False)
        clients[role].force_login(w[role])
    return clients


FORM_NAMES = ["reply", "note", "tags", "status", "assign", "snooze", "priority", "presence", "notifications_read",
              "retry", "spam", "account_presence", "tokens", "capacity", "workload", "team_create", "team_members",
              "team_members_admin", "reassign_ids", "reassign_all", "canned_new", "canned_edit", "rule_new",
              "rule_edit", "sla_new", "sla_edit", "hours", "poll_now", "rule_move"]


@pytest.mark.parametrize("index", range(len(FORM_NAMES)), ids=FORM_NAMES)
def test_every_form_field_takes_hostile_values_without_a_500(world, index):
    role, url, valid = _forms(world)[index]
    clients = _clients(world)
    client = clients[role]
    failures = []
    assert _post(client, url, valid).status_code < 500, "the valid form itself"
    for field in list(valid) + ["unexpected"]:
        for value in HOSTILE:
            response = _post(client, url, {**valid, field: value})
            if response.status_code >= 500:
                failures.append(f"{field}={value[:20]!r}: {response.status_code}")
        missing = {k: v for k, v in valid.items() if k != field}
        response = _post(client, url, missing)
        if response.status_code >= 500:
            failures.append(f"{field} missing: {response.status_code}")
    response = _post(client, url, {})
    if response.status_code >= 500:
        failures.append(f"empty form: {response.status_code}")
    assert not failures, f"{url}: " + "; ".join(failures)


def test_nothing_with_a_nul_reached_the_database(world):
    """After every form took every hostile value, no stored text holds a NUL or a lone surrogate."""
    clients = _clients(world)
    for role, url, valid in _forms(world):
        for field in valid:
            _post(clients[role], url, {**valid, field: "n\x00l \ud800"})
    for model, fields in ((Note, ["text"]), (Message, ["text"]), (CannedResponse, ["shortcut", "title", "text"]),
                          (RoutingRule, ["name", "regex"]), (SlaPolicy, ["name"]), (ApiToken, ["name"])):
        for row in model.objects.all():
            for name in fields:
                assert "\x00" not in getattr(row, name) and "\ud800" not in getattr(row, name), (model, name)


# --- ids of objects that do not exist (deleted) -----------------------------------------------------------

def test_deleted_objects_in_urls_are_404(world):
    clients = _clients(world)
    gone = 2 ** 31 - 7
    for role, url in [
        ("agent", reverse("inbox:reply", args=[gone])), ("agent", reverse("inbox:note", args=[gone])),
        ("agent", reverse("inbox:retry", args=[world["conversation"].pk, gone])),
        ("agent", reverse("accounts:token-revoke", args=[gone])),
        ("supervisor", reverse("supervisor:agent-capacity", args=[gone])),
        ("supervisor", reverse("supervisor:team", args=[gone])),
        ("supervisor", reverse("supervisor:canned-edit", args=[gone])),
        ("supervisor", reverse("supervisor:canned-delete", args=[gone])),
        ("supervisor", reverse("routing:rule-edit", args=[gone])),
        ("supervisor", reverse("routing:rule-delete", args=[gone])),
        ("supervisor", reverse("routing:sla-edit", args=[gone])),
        ("supervisor", reverse("routing:sla-delete", args=[gone])),
        ("supervisor", reverse("routing:hours-edit", args=[gone])),
        ("supervisor", reverse("connectors:poll_now", args=[gone])),
    ]:
        assert _post(clients[role], url, {"text": "x"}).status_code == 404, url
    # ids past PostgreSQL's bigint in a path: 404, not an out-of-range 500
    for url in ("/inbox/c/99999999999999999999/note/", "/supervisor/canned/99999999999999999999/",
                "/routing/rules/99999999999999999999/", "/supervisor/teams/99999999999999999999/"):
        role = "agent" if url.startswith("/inbox/") else "admin"
        assert _post(clients[role], url, {"text": "x"}).status_code == 404, url


def test_objects_deleted_between_page_and_submit(world):
    """A form names a queue / canned response / agent that was deleted after the page loaded."""
    clients = _clients(world)
    gone_queue = QueueFactory(team=world["team"])
    gone_agent = UserFactory(role="agent")
    world["team"].members.add(gone_agent)
    gone_canned = CannedResponse.objects.create(shortcut="gone", title="Gone", text="x", team=world["team"])
    queue_pk, agent_pk, canned_pk = gone_queue.pk, gone_agent.pk, gone_canned.pk
    gone_queue.delete(), gone_canned.delete()
    gone_agent.is_active = False
    gone_agent.save()
    sup = clients["supervisor"]
    page = _post(sup, reverse("routing:rule-new"), {"name": "R", "hours": "any", "visibility": "any",
                                                      "set_queue": str(queue_pk), "auto_reply": str(canned_pk)})
    assert page.status_code == 200 and b"Select a valid choice" in page.content
    assert not RoutingRule.objects.filter(name="R").exists()
    page = _post(sup, reverse("routing:sla"), {"name": "S", "queue": str(queue_pk), "first_response_minutes": "5"})
    assert page.status_code == 200 and b"Select a valid choice" in page.content
    response = _post(clients["agent"], reverse("inbox:assign", args=[world["conversation"].pk]),
                     {"assignee": str(agent_pk)})
    assert response.status_code == 302
    world["conversation"].refresh_from_db()
    assert world["conversation"].assignee_id == world["agent"].pk
    response = _post(sup, reverse("supervisor:reassign"), {"to": f"queue:{queue_pk}", "ids": str(world["conversation"].pk),
                                                           "confirmed": "1"})
    assert response.status_code == 302
    world["conversation"].refresh_from_db()
    assert world["conversation"].queue_id == world["queue"].pk


# --- what a user typed comes back escaped ----------------------------------------------------------------

def _raw_script_free(content: bytes) -> bool:
    return b"<script>alert(1)" not in content


def test_markup_typed_into_forms_comes_back_escaped(world, client):
    clients = _clients(world)
    c = world["conversation"]
    agent, sup, admin = clients["agent"], clients["supervisor"], clients["admin"]
    _post(agent, reverse("inbox:note", args=[c.pk]), {"text": SCRIPT})
    _post(agent, reverse("inbox:reply", args=[c.pk]), {"text": SCRIPT, "reply_token": "tok-escape-1"})
    _post(agent, reverse("inbox:tags", args=[c.pk]), {"tags": SCRIPT})
    _post(agent, reverse("inbox:assign", args=[c.pk]), {"assignee": "", "reason": SCRIPT})
    assert Note.objects.filter(text=SCRIPT).exists()
    assert Message.objects.filter(text=SCRIPT).exists()
    thread = agent.get(reverse("inbox:detail", args=[c.pk]))
    assert thread.status_code == 200 and _raw_script_free(thread.content)
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in thread.content
    listing = agent.get(reverse("inbox:list"))
    assert listing.status_code == 200 and _raw_script_free(listing.content)

    _post(agent, reverse("accounts:tokens"), {"name": SCRIPT})
    page = agent.get(reverse("accounts:tokens"))
    assert _raw_script_free(page.content) and b"&lt;script&gt;" in page.content

    _post(sup, reverse("supervisor:canned"), {"shortcut": "x1", "title": SCRIPT, "text": SCRIPT,
                                              "team": str(world["team"].pk)})
    page = sup.get(reverse("supervisor:canned"))
    assert _raw_script_free(page.content) and b"&lt;script&gt;" in page.content
    page = agent.get(reverse("inbox:detail", args=[c.pk]))  # canned responses offered in the composer
    assert _raw_script_free(page.content)

    page = _post(sup, reverse("routing:rule-new"), {"name": SCRIPT, "hours": "any", "visibility": "any",
                                                     "keywords": SCRIPT, "regex": "[", "add_tags": SCRIPT})
    assert page.status_code == 200 and _raw_script_free(page.content)  # the form shown back, with its error
    _post(sup, reverse("routing:rule-new"), {"name": SCRIPT, "hours": "any", "visibility": "any",
                                              "keywords": SCRIPT, "add_tags": "vip"})
    page = sup.get(reverse("routing:rules"))
    assert page.status_code == 200 and _raw_script_free(page.content) and b"&lt;script&gt;" in page.content

    page = _post(sup, reverse("routing:sla"), {"name": SCRIPT, "queue": str(world["queue"].pk),
                                                "first_response_minutes": "-5"})
    assert _raw_script_free(page.content)
    _post(sup, reverse("routing:sla"), {"name": SCRIPT, "queue": str(world["queue"].pk),
                                         "priority_bucket": "0", "first_response_minutes": "5", "is_active": "on"})
    page = sup.get(reverse("routing:sla"))
    assert _raw_script_free(page.content) and b"&lt;script&gt;" in page.content

    page = _post(sup, reverse("routing:hours-edit", args=[world["team"].pk]),
                 {"time_zone": SCRIPT, "mon": SCRIPT, "holidays": SCRIPT})
    assert page.status_code == 200 and _raw_script_free(page.content)
    _post(sup, reverse("routing:hours-edit", args=[world["team"].pk]),
          {"time_zone": "UTC", "mon": "09:00-17:00", "holidays": "2026-12-25 " + SCRIPT})
    page = sup.get(reverse("routing:hours"))
    assert _raw_script_free(page.content)

    _post(admin, reverse("supervisor:teams"), {"name": SCRIPT, "time_zone": "UTC"})
    for url in (reverse("supervisor:teams"), reverse("supervisor:agents"), reverse("supervisor:reassign"),
                reverse("supervisor:audit"), reverse("supervisor:dashboard")):
        page = admin.get(url)
        assert page.status_code == 200 and _raw_script_free(page.content), url

    _post(sup, reverse("supervisor:agent-capacity", args=[world["agent"].pk]),
          {"capacity": "5", "channel_capacity": f"{SCRIPT}=1"})
    page = sup.get(reverse("supervisor:agents"))
    assert _raw_script_free(page.content)
    page = sup.get(reverse("supervisor:audit"))
    assert page.status_code == 200 and _raw_script_free(page.content)


def test_nul_in_free_text_is_a_form_error_or_replaced_never_stored(world):
    """The fields whose text is stored: a NUL never reaches PostgreSQL, and the user
    sees either the replacement character or a message, never a server error."""
    clients = _clients(world)
    c = world["conversation"]
    agent, sup = clients["agent"], clients["supervisor"]
    assert _post(agent, reverse("inbox:note", args=[c.pk]), {"text": "a\x00b"}).status_code < 500
    assert _post(agent, reverse("inbox:reply", args=[c.pk]), {"text": "a\x00b", "reply_token": "tok-nul-12"}).status_code < 500
    assert _post(agent, reverse("inbox:assign", args=[c.pk]), {"assignee": "", "reason": "r\x00"}).status_code < 500
    assert _post(sup, reverse("routing:rule-new"), {"name": "K", "hours": "any", "visibility": "any",
                                                     "keywords": "a\x00b", "add_tags": "t\x00"}).status_code < 500
    assert _post(sup, reverse("supervisor:agent-capacity", args=[world["agent"].pk]),
                 {"capacity": "5", "channel_capacity": "twit\x00ter=1"}).status_code < 500
    for note in Note.objects.all():
        assert "\x00" not in note.text
    for rule in RoutingRule.objects.all():
        assert not any("\x00" in k for k in rule.keywords + rule.add_tags)
    for event in ConversationEvent.objects.all():
        assert "\\u0000" not in str(event.data) and "\x00" not in str(event.data)
    for entry in AuditEntry.objects.all():
        assert "\x00" not in str(entry.data)


# --- the API's form bodies (urlencoded / multipart: DRF's FormParser, MultiPartParser) ----------------------

def _api_forms(w):
    c, team, agent = w["conversation"], w["team"], w["agent"]
    return [
        ("agent", f"/api/v1/conversations/{c.pk}/notes/", {"text": "note"}),
        ("agent", f"/api/v1/conversations/{c.pk}/reply/", {"text": "hello", "private": "false"}),
        ("agent", f"/api/v1/conversations/{c.pk}/tags/", {"add": "vip", "remove": "old"}),
        ("agent", f"/api/v1/conversations/{c.pk}/assign/", {"assignee": str(agent.pk), "reason": "mine"}),
        ("agent", f"/api/v1/conversations/{c.pk}/status/", {"status": "pending", "reason": "wait"}),
        ("agent", f"/api/v1/conversations/{c.pk}/priority/", {"priority_bucket": "1", "reason": "angry"}),
        ("agent", f"/api/v1/conversations/{c.pk}/snooze/", {"until": "2030-01-01T09:00:00Z"}),
        ("agent", "/api/v1/tokens/", {"name": "script"}),
        ("agent", "/api/v1/users/me/presence/", {"presence": "online"}),
        ("supervisor", "/api/v1/canned-responses/", {"shortcut": "s1", "title": "T", "text": "x", "team": str(team.pk)}),
        ("supervisor", f"/api/v1/users/{agent.pk}/capacity/", {"capacity": "5", "channel_capacity.twitter": "2"}),
        ("supervisor", f"/api/v1/users/{agent.pk}/workload/", {"to_team": str(team.pk), "reason": "leave"}),
        ("supervisor", "/api/v1/rules/", {"name": "R", "keywords": "refund", "add_tags": "vip", "regex": "order"}),
        ("supervisor", "/api/v1/sla-policies/", {"name": "S", "queue": str(w["queue"].pk), "priority_bucket": "2",
                                                 "first_response_minutes": "5"}),
        ("supervisor", "/api/v1/business-hours/", {"team": str(team.pk), "time_zone": "UTC",
                                                   "schedule": '{"mon": [["09:00", "17:00"]]}',
                                                   "holidays[0]date": "2026-12-25", "holidays[0]name": "Xmas"}),
        ("supervisor", "/api/v1/conversations/bulk-assign/", {"ids": str(c.pk), "to.agent": str(agent.pk),
                                                               "reason": "balance"}),
        ("admin", "/api/v1/teams/", {"name": "API team", "time_zone": "UTC"}),
        ("admin", "/api/v1/queues/", {"name": "API queue", "team": str(team.pk)}),
    ]


API_HOSTILE = ["a\x00b", "x" * 100_000, SCRIPT, "abc", "-1", "99999999999999999999", "",
               '{"mon": [["09:00\\u0000", "17:00"]], "\\u0000": 1}', '{"\\ud800": "\\udfff"}']


@pytest.mark.parametrize("index", range(18))
def test_api_form_bodies_take_hostile_values_without_a_500(world, index):
    from rest_framework.test import APIClient

    role, url, valid = _api_forms(world)[index]
    client = APIClient()
    client.force_authenticate(world[role])
    baseline = client.post(url, _encode(valid), content_type="application/x-www-form-urlencoded")
    assert baseline.status_code < 300, (url, getattr(baseline, "data", None))
    failures = []
    for field in list(valid) + ["channel_capacity.tw\x00", "unexpected"]:
        for value in API_HOSTILE:
            for encode in ("urlencoded", "multipart"):
                data = {**valid, field: value}
                if encode == "urlencoded":
                    response = client.post(url, _encode(data), content_type="application/x-www-form-urlencoded")
                else:
                    response = client.post(url, data, format="multipart")
                if response.status_code >= 500:
                    failures.append(f"{field}={value[:20]!r} ({encode}): {response.status_code}")
    assert not failures, f"{url}: " + "; ".join(failures)


# --- the admin's JSON fields (JSON text typed into a textarea: "\u0000" passes every text check) -----------

def _admin_form_data(page) -> dict:
    """What the change page would post back as it is (inline formsets sent empty)."""
    form = page.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            data[name] = [str(v) for v in value]
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        else:
            data[name] = value if isinstance(value, str) else field.prepare_value(value)
    for formset in page.context.get("inline_admin_formsets", []):
        prefix = formset.formset.prefix
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    return data


@pytest.mark.parametrize("value", ['["a\\u0000b"]', '{"\\u0000": 1}', '{"k": "\\ud800"}', '"\\u0000"'])
def test_admin_json_fields_refuse_what_postgresql_cannot_store(world, value):
    from apps.accounts.models import User
    from apps.contacts.models import Customer

    admin = Client(raise_request_exception=False)
    admin.force_login(world["admin"])
    hours = BusinessHours.objects.create(team=world["team"])
    customer = Customer.objects.first()
    message = Message.objects.first()
    event = ConversationEvent.objects.create(conversation=world["conversation"], kind="note_added", data={})
    failures = []
    for obj, fields in ((world["rule"], ["keywords", "languages", "customer_tags", "add_tags", "channels"]),
                        (world["agent"], ["channel_capacity"]), (customer, ["tags"]), (hours, ["schedule"]),
                        (message, ["raw"]), (event, ["data"])):
        url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
        page = admin.get(url)
        assert page.status_code == 200, url
        base = _admin_form_data(page)
        for field in fields:
            response = admin.post(url, _encode({**base, field: value}), content_type="application/x-www-form-urlencoded")
            if response.status_code >= 500:
                failures.append(f"{obj._meta.model_name}.{field}: {response.status_code}")
            elif response.status_code == 200:
                assert b"errornote" in response.content or b"errorlist" in response.content, (url, field)
            stored = type(obj).objects.filter(pk=obj.pk).values_list(field, flat=True).get()
            assert "\x00" not in str(stored) and "\ud800" not in str(stored), (url, field, stored)
    assert not failures, failures
    assert User.objects.filter(pk=world["agent"].pk).exists()


def test_login_form_takes_hostile_values(db, agent):
    client = Client(raise_request_exception=False)
    for username in ("a\x00b", "\x00", "a\ud800b", "x" * 100_000, SCRIPT, agent.username + "\x00"):
        for password in ("p\x00w", "x" * 100_000, ""):
            response = _post(client, "/login/", {"username": username, "password": password})
            assert response.status_code in (200, 400, 403, 429), (username[:20], response.status_code)
            assert b"<script>alert(1)" not in response.content


def test_multipart_form_posts_with_a_nul_in_any_field(world):
    """Browsers may send any form as multipart/form-data: the same NUL, the same outcome."""
    clients = _clients(world)
    failures = []
    for role, url, valid in _forms(world):
        for field in valid:
            data = {**valid, field: "multi\x00part"}
            response = clients[role].post(url, data)  # the test client's default: multipart
            if response.status_code >= 500:
                failures.append(f"{url} {field}: {response.status_code}")
    assert not failures, failures
    assert Note.objects.filter(text="multi\ufffdpart").exists()  # stored, the NUL as U+FFFD
