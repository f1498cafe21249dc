"""The report pages as a support lead and a marketing user meet them (issue 21): headline
cards first, with numbers computed here from the test's own history; human labels and
folded columns; humanised durations; top positive/negative topics only on their own side;
no order numbers among hashtags; spike alerts that can be acknowledged (and by whom); an
invalid range that keeps the form and says what is wrong; handle time right after work."""
import datetime as dt
import html as htmlmod
import re
import statistics
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.reports import formatting, handle_time, rollups, services, themes
from apps.reports.models import SpikeAlert, TermRollup
from tests.factories import ConversationFactory, MessageFactory, UserFactory

from .history import at, clock, naive
from .test_correctness import world  # noqa: F401 - the fixture history

RANGE = {"start": "2026-11-02", "end": "2026-11-05", "tz": "UTC"}


def cards(page_html: str) -> dict[str, dict]:
    """{label: {"value", "change", "note"}} of the page's headline cards, as text."""
    out = {}
    for block in re.findall(r'<div class="kpi">(.*?)</div>', page_html, re.S):
        def text(css, block=block):
            found = re.search(rf'<span class="{css}[^"]*">(.*?)</span>\s*(?:<span class="(?:kpi-note|change)|$)',
                              block, re.S)
            return htmlmod.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip() if found else ""
        label = htmlmod.unescape(re.search(r'<span class="k">(.*?)</span>', block, re.S).group(1)).strip()
        value = htmlmod.unescape(re.search(r'<span class="v">(.*?)</span>', block, re.S).group(1)).strip()
        out[label] = {"value": value, "change": text("change"), "note": text("kpi-note")}
    return out


def section(page_html: str, css: str) -> str:
    found = re.search(rf'<div class="highlight {css}">(.*?)</div>', page_html, re.S)
    return found.group(1) if found else ""


# --- cards and labels ----------------------------------------------------------------------

def test_service_cards_are_the_periods_figures_counted_independently(client, world):  # noqa: F811
    client.force_login(UserFactory(role="supervisor"))
    page = client.get("/reports/service/", RANGE).content.decode()
    expect = naive(world.script, lo=at(2, 0), hi=at(6, 0))
    before = naive(world.script, lo=dt.datetime(2026, 10, 29, tzinfo=dt.timezone.utc), hi=at(2, 0))
    found = cards(page)
    assert found["Messages received"]["value"] == str(expect["in"]) == "8"
    assert found["Messages received"]["change"].startswith(f"▲ {expect['in'] - before['in']}")
    assert "(was 0)" in found["Messages received"]["change"]
    assert found["Replies sent"]["value"] == str(expect["out_human"])
    # the defaults: first response once per conversation, the cohort's resolution rate; the
    # per-cycle figures in the cards' notes
    first_in, first_human, resolved_now = {}, {}, {}
    for when, name, action, _ in world.script:
        if action == "in":
            first_in.setdefault(name, when)
            if resolved_now.get(name):
                resolved_now[name] = False
        elif action == "human" and name not in first_human:
            first_human[name] = when
        elif action in ("resolved", "closed"):
            resolved_now[name] = True
    per_conversation = [(first_human[n] - first_in[n]).total_seconds() for n in first_human
                        if at(2, 0) <= first_human[n] < at(6, 0)]
    assert found["First response time (median)"]["value"] == formatting.duration(
        statistics.median(per_conversation))
    assert formatting.duration(statistics.median(expect["first_response"])) == "30 min"
    assert "per cycle: 30 min" in found["First response time (median)"]["note"]
    cohort = [n for n, t in first_in.items() if at(2, 0) <= t < at(6, 0)]
    rate = sum(1 for n in cohort if resolved_now.get(n)) / len(cohort)
    assert found["Resolution rate"]["value"] == formatting.percent(rate)
    per_cycle = len(expect["resolution"]) / (expect["opened"] + expect["reopened"])
    assert f"resolutions / cycles started: {formatting.percent(per_cycle)}" in found["Resolution rate"]["note"]
    assert found["SLA targets met"]["value"] == formatting.percent(
        expect["sla_met"] / (expect["sla_met"] + expect["sla_breached"]))
    assert found["Handle time per work session (median)"]["value"] == formatting.duration(
        statistics.median(expect["handle"]))
    # the period is said in words, with the one it is compared with
    assert "Showing <strong>Mon 2 Nov 2026 – Thu 5 Nov 2026</strong>" in page
    assert "changes are against 29 Oct – 1 Nov 2026" in page


def test_tables_have_human_labels_default_columns_and_the_rest_folded(client, world):  # noqa: F811
    client.force_login(UserFactory(role="supervisor"))
    page = client.get("/reports/service/", RANGE).content.decode()
    headers = re.findall(r"<th scope=\"col\">(.*?)</th>", page)
    assert "First response time median" in headers and "First response per cycle median" in headers
    assert "Handle time median" in headers
    assert not [h for h in headers if "_" in h]  # no raw column name anywhere
    assert "All columns (60)" in page  # by day: 12 shown by default, the rest folded
    assert '<details class="more-tables">' in page
    # the 37 totals are a list of figures, not a 37-column row
    totals = re.search(r'<dl class="figures">(.*?)</dl>', page, re.S).group(1)
    assert "<dt>Reply time (business hours) p90</dt>" in totals and "<dt>Messages in</dt>" in totals
    # the CSV keeps the raw names for spreadsheets and scripts
    csv = client.get("/reports/service/", {**RANGE, "format": "csv", "table": "totals"}).content.decode()
    assert csv.splitlines()[0].startswith("volume_in,volume_out")


@pytest.mark.parametrize("seconds,text", [(45, "45 s"), (240, "4 min"), (270, "4 min 30 s"), (1800, "30 min"),
                                          (7800, "2 h 10 min"), (7200, "2 h"), (3 * 86400 + 4 * 3600, "3 d 4 h"),
                                          (None, "–")])
def test_durations_read_as_words(seconds, text):
    assert formatting.duration(seconds) == text


@pytest.mark.parametrize("name", ["experience", "marketing", "gap"])
def test_every_page_leads_with_cards_then_charts_then_tables(client, world, name):  # noqa: F811
    client.force_login(UserFactory(role="supervisor"))
    page = client.get(f"/reports/{name}/", RANGE).content.decode()
    kpis, charts, table = page.index('class="kpis"'), page.index('class="charts"'), page.index('class="report-table"')
    assert kpis < charts < table
    assert len(cards(page)) >= 4
    assert not [h for h in re.findall(r"<th scope=\"col\">(.*?)</th>", page) if "_" in h]


def test_experience_and_gap_cards_match_the_history(client, world):  # noqa: F811
    client.force_login(UserFactory(role="supervisor"))
    expect = naive(world.script, lo=at(2, 0), hi=at(6, 0))
    experience = cards(client.get("/reports/experience/", RANGE).content.decode())
    satisfied = sum(1 for s in expect["csat"] if s >= 4) / len(expect["csat"])
    assert experience["CSAT: customers satisfied"]["value"] == formatting.percent(satisfied) == "0%"
    assert experience["Repeat contact rate"]["value"] == formatting.percent(expect["repeat"] / len(expect["resolution"]))
    gap = cards(client.get("/reports/gap/", RANGE).content.decode())
    # c1 met its first-response target and ended angry; c2 missed it and ended with a CSAT of 2
    assert gap["Resolved conversations"]["value"] == "2"
    assert gap["Handled within target, ended badly"]["value"] == "1"
    assert gap["Missed a target, ended well"]["value"] == "0"


# --- marketing: the story first, and honest lists -------------------------------------------

def test_marketing_page_leads_with_the_story_and_folds_the_rest(client, world):  # noqa: F811
    client.force_login(UserFactory(role="marketing"))
    page = client.get("/reports/marketing/", RANGE).content.decode()
    found = cards(page)
    assert found["Mentions"]["value"] == "8"
    assert found["Net sentiment"]["value"] == "−25"  # 2 positive, 4 negative of 8 scored
    assert found["Most mentioned topic"]["value"] == "billing"
    open_part, folded = page.split('<details class="more-tables">')
    assert open_part.count('class="report-table"') == 2  # topics and hashtags
    assert folded.count('class="report-table"') == 10


def test_top_positive_and_negative_list_only_their_own_side(client, api_client, world):  # noqa: F811
    client.force_login(UserFactory(role="marketing"))
    page = client.get("/reports/marketing/", RANGE).content.decode()
    positive, negative = section(page, "positive"), section(page, "negative")
    # praise: 2 positive of 2. billing: 0 positive (1 negative, 1 neutral); product: 1 and 1 (net 0)
    assert "<strong>praise</strong>" in positive
    assert "<strong>billing</strong>" not in positive and "<strong>product</strong>" not in positive
    assert "<strong>billing</strong>" in negative
    assert "<strong>praise</strong>" not in negative and "<strong>product</strong>" not in negative
    api_client.force_authenticate(UserFactory(role="marketing"))
    data = api_client.get("/api/v1/reports/marketing/", RANGE).json()
    assert [t["term"] for t in data["top_positive"]] == ["praise"]
    assert [t["term"] for t in data["top_negative"]] == ["billing"]
    assert all(t["positive"] > 0 for t in data["top_positive"]) and all(t["negative"] > 0 for t in data["top_negative"])


def test_no_positive_topic_says_so(client, world):  # noqa: F811
    client.force_login(UserFactory(role="marketing"))
    # 5 Nov alone: two messages about billing, both negative (a topic ranks from 2 mentions;
    # the only one there was listed as "top positive" at net -100)
    world.customer_says("c9", at(5, 9, 0), "The billing is wrong and terrible", who="zed")
    world.customer_says("c9", at(5, 9, 5), "Awful billing, I hate this", who="zed")
    world.roll_up(at(5, 9, 30))
    page = client.get("/reports/marketing/", {"start": "2026-11-05", "end": "2026-11-05", "tz": "UTC"})
    positive, negative = section(page.content.decode(), "positive"), section(page.content.decode(), "negative")
    assert "<li>" not in positive and "No topic had more positive than negative mentions" in positive
    assert "<strong>billing</strong>" in negative


def test_an_order_number_is_not_a_hashtag():
    assert themes.hashtags_of("Where is order #26810? #fail #Sale2026 #_x #42") == ["_x", "fail", "sale2026"]


def test_order_numbers_never_reach_the_marketing_page(client, world):  # noqa: F811
    world.customer_says("c8", at(4, 12, 0), "Order #26810 never came #fail", who="olga")
    # an event recorded before the fix (its data still names the number) is not counted either
    conversation = world.conversations["c8"]
    services.metric_event_emit(key="in:old-26810", kind="msg_in", occurred_at=at(4, 12, 5),
                               dims=services.conversation_dims(conversation),
                               data={"label": "negative", "topics": [], "hashtags": ["26811"], "keywords": []},
                               value=-0.6)
    world.roll_up(at(4, 12, 30))
    assert not TermRollup.objects.filter(term_type="hashtag", term__in=["26810", "26811"]).exists()
    client.force_login(UserFactory(role="marketing"))
    page = client.get("/reports/marketing/", RANGE).content.decode()
    assert "<td>fail</td>" in page
    assert "26810" not in re.sub(r"<td class=\"text\">.*?</td>", "", page, flags=re.S)  # only inside a post
    assert "26811" not in page


# --- spike alerts: acknowledged, by whom, and only while relevant ---------------------------

def _alert(hours_ago: float, channel="twitter", kind="volume") -> SpikeAlert:
    hour = (timezone.now() - dt.timedelta(hours=hours_ago)).replace(minute=0, second=0, microsecond=0)
    return SpikeAlert.objects.create(kind=kind, channel=channel, bucket=hour, value=40, baseline=3,
                                     message=f"{channel}: 40 inbound messages this hour <b>#{hours_ago}</b>")


def _csrf_client(user) -> tuple[Client, str]:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    page = browser.get("/reports/service/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    return browser, token


def _banner(client) -> str:
    page = client.get("/reports/service/").content.decode()
    found = re.search(r'<section id="live-alerts".*?</section>', page, re.S).group(0)
    return found if "hidden" not in found.split(">")[0] else ""


def test_a_supervisor_acknowledges_an_alert_for_everyone(db):
    alert = _alert(1)
    lead, other_lead = UserFactory(role="supervisor"), UserFactory(role="supervisor")
    browser, token = _csrf_client(lead)
    assert "40 inbound messages this hour &lt;b&gt;" in _banner(browser)  # escaped
    url = reverse("reports:alert_acknowledge", args=[alert.pk])
    assert browser.post(url, {"next": "/reports/service/"}).status_code == 403  # no CSRF token
    response = browser.post(url, {"csrfmiddlewaretoken": token, "next": "/reports/service/"})
    assert response.status_code == 302 and response["Location"] == "/reports/service/"
    alert.refresh_from_db()
    assert alert.acknowledged_at is not None and alert.acknowledged_by == lead
    assert _banner(browser) == ""
    other = Client()
    other.force_login(other_lead)
    assert _banner(other) == ""
    assert "40 inbound" not in other.get("/reports/").content.decode()


def test_marketing_dismisses_for_themselves_and_agents_cannot_acknowledge(db):
    alert = _alert(2)
    marketer, lead, agent = UserFactory(role="marketing"), UserFactory(role="supervisor"), UserFactory(role="agent")
    url = reverse("reports:alert_acknowledge", args=[alert.pk])
    outsider = Client()
    outsider.force_login(agent)
    assert outsider.post(url).status_code == 403
    assert outsider.get(url).status_code in (403, 405)
    browser, token = _csrf_client(marketer)
    assert "Dismiss" in _banner(browser)
    assert browser.post(url, {"csrfmiddlewaretoken": token, "next": "https://evil.example/"}).status_code == 302
    alert.refresh_from_db()
    assert alert.acknowledged_at is None  # marketing reads reports: the support team still sees it
    assert _banner(browser) == ""
    still = Client()
    still.force_login(lead)
    assert "40 inbound" in _banner(still)
    assert Client().post(url).status_code == 302  # anonymous: to the login page, nothing changed
    alert.refresh_from_db()
    assert alert.acknowledged_at is None


def test_alerts_show_only_while_recent_and_in_the_period_viewed(client, db):
    old, fresh = _alert(24 * 5, channel="demo"), _alert(1)
    client.force_login(UserFactory(role="supervisor"))
    banner = _banner(client)
    assert "twitter: 40" in banner and "demo: 40" not in banner
    assert "demo: 40" not in client.get("/reports/").content.decode()
    # a period that ended before the fresh alert's hour: no banner
    ended = (fresh.bucket - dt.timedelta(days=2)).date().isoformat()
    page = client.get("/reports/service/", {"start": ended, "end": ended, "tz": "UTC"}).content.decode()
    assert "twitter: 40" not in page
    # the old one is still in the marketing report's history of its own period
    day = old.bucket.date().isoformat()
    history = client.get("/reports/marketing/", {"start": day, "end": day, "tz": "UTC"}).content.decode()
    assert "demo: 40 inbound messages" in history.split('<details class="more-tables">')[1]


def test_acknowledging_an_unknown_alert_is_a_404(db):
    browser, token = _csrf_client(UserFactory(role="supervisor"))
    assert browser.post(reverse("reports:alert_acknowledge", args=[999999]),
                        {"csrfmiddlewaretoken": token}).status_code == 404


# --- an invalid range keeps the form and says what is wrong ----------------------------------

def _field_error(page: str, field: str) -> str:
    found = re.search(rf'<span class="field-error" id="r-{field}-err">(.*?)</span>', page, re.S)
    return htmlmod.unescape(found.group(1)) if found else ""


def test_end_before_start_keeps_the_inputs_and_shows_no_other_period(client, world):  # noqa: F811
    client.force_login(UserFactory(role="supervisor"))
    response = client.get("/reports/service/", {"start": "2026-11-05", "end": "2026-11-01", "tz": "Europe/Berlin",
                                                "channel": "twitter"})
    assert response.status_code == 400
    page = response.content.decode()
    assert 'name="start" value="2026-11-05"' in page and 'name="end" value="2026-11-01"' in page
    assert '<option value="Europe/Berlin" selected>' in page and '<option value="twitter" selected>' in page
    assert "end date is before the start date" in _field_error(page, "end") and not _field_error(page, "start")
    assert "No report is shown" in page
    assert 'class="kpis"' not in page and 'id="period"' not in page  # no other period passed off as this one


@pytest.mark.parametrize("query,field,says", [
    ({"start": "yesterday"}, "start", "is not a date; write it as YYYY-MM-DD"),
    ({"start": "2026-11-01", "end": "9999-12-31"}, "end", "pick a date from"),
    ({"start": "2026-02-31", "end": "2026-03-02"}, "start", "is not a date"),
    ({"start": "2020-01-01", "end": "2026-01-01"}, "end", "at most 366 days"),
    ({"tz": "Mars/Olympus"}, "tz", "Unknown time zone"),
])
def test_each_bad_field_is_named_next_to_it(client, db, query, field, says):
    client.force_login(UserFactory(role="supervisor", time_zone="Asia/Tokyo"))
    response = client.get("/reports/experience/", query)
    page = response.content.decode()
    assert response.status_code == 400 and says in _field_error(page, field)
    for name, value in query.items():
        if name in ("start", "end"):
            assert f'name="{name}" value="{value}"' in page
    if field != "tz":  # the zone stays the user's own, not UTC
        assert '<option value="Asia/Tokyo" selected>' in page


def test_hostile_input_in_the_form_is_escaped(client, db):
    client.force_login(UserFactory(role="supervisor"))
    page = client.get("/reports/service/", {"start": '"><script>alert(1)</script>',
                                            "tz": "<script>x</script>"}).content.decode()
    assert "<script>alert(1)" not in page and "<script>x</script>" not in page
    assert "&lt;script&gt;" in page


# --- handle time right after the work ------------------------------------------------------

def test_minutes_of_work_on_a_thread_show_in_the_report_at_once(client, agent, queue, twitter_account):
    """The user's case: an agent works a thread for four minutes (the page's presence poll
    reports input every 30 s), then their lead opens the service report. The work session
    counts as handle time only once it ends (5 min without activity, closed by the next
    apply), so the report said "–"; it now shows the time in progress, then the session."""
    conversation = ConversationFactory(channel_account=twitter_account, queue=queue)
    MessageFactory(conversation=conversation)
    start = timezone.now().replace(second=0, microsecond=0) - dt.timedelta(minutes=30)
    client.force_login(agent)
    url = reverse("inbox:presence", args=[conversation.pk])
    for step in range(9):  # 0:00 ... 4:00
        with clock(start + dt.timedelta(seconds=30 * step)):
            assert client.post(url, {"typing": "0", "active": "1"}).status_code == 200
    lead = Client()
    lead.force_login(UserFactory(role="supervisor"))
    day = {"start": start.date().isoformat(), "end": (start + dt.timedelta(days=1)).date().isoformat(),
           "tz": "UTC"}
    with clock(start + dt.timedelta(minutes=4, seconds=20)):
        found = cards(lead.get("/reports/service/", day).content.decode())
    assert found["Handle time in progress"]["value"] == "4 min"
    assert found["Handle time per work session (median)"]["value"] == "–"
    assert "no work session has ended" in found["Handle time per work session (median)"]["note"]
    # ten minutes later the beat's apply has closed it: the session itself is counted
    with clock(start + dt.timedelta(minutes=14)), mock.patch("apps.reports.services.rollups_apply_soon"):
        handle_time.work_sessions_close_idle()
        rollups.rollups_apply()
        found = cards(lead.get("/reports/service/", day).content.decode())
    assert found["Handle time per work session (median)"]["value"] == "4 min"
    assert "1 session, 4 min in all" in found["Handle time per work session (median)"]["note"]
    assert "Handle time in progress" not in found
