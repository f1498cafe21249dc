"""Report pages, JSON API and CSV export: roles, pickers, and what each role may see."""
import csv
import datetime as dt
import io

import pytest
from django.core import mail
from django.core.management import call_command

from apps.reports import digest, services, spikes
from apps.reports.models import SpikeAlert
from tests.factories import UserFactory

from .history import at, clock
from .test_correctness import world  # noqa: F401 - the fixture history

RANGE = {"start": "2026-11-02", "end": "2026-11-05", "tz": "UTC"}


@pytest.mark.parametrize("name", ["service", "experience", "marketing", "gap"])
def test_supervisor_sees_each_page_with_charts_tables_and_definitions(client, world, name):  # noqa: F811
    client.force_login(UserFactory(role="supervisor"))
    page = client.get(f"/reports/{name}/", RANGE)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'class="kpis"' in html and "<svg" in html or 'class="hbars' in html  # cards and server-drawn charts
    assert "Definitions used in this report" in html
    assert 'name="tz"' in html and 'name="start"' in html and "format=csv" in html


def test_service_page_shows_figures_in_local_days(client, world):  # noqa: F811
    client.force_login(UserFactory(role="supervisor"))
    html = client.get("/reports/service/", {**RANGE, "tz": "Europe/Berlin"}).content.decode()
    assert "days in Europe/Berlin" in html
    assert "30 min" in html  # median first response
    assert "Handle time per work session (median)" in html and "5 min" in html  # 2, 3, 7 and 9 minutes of work


def test_agents_get_403_and_anonymous_goes_to_login(client, api_client, world):  # noqa: F811
    client.force_login(UserFactory(role="agent"))
    assert client.get("/reports/service/").status_code == 403
    assert client.get("/reports/").status_code == 403
    api_client.force_authenticate(UserFactory(role="agent"))
    response = api_client.get("/api/v1/reports/service/")
    assert response.status_code == 403 and "detail" in response.json()
    client.logout()
    assert client.get("/reports/service/").status_code == 302


def test_api_json_matches_page_data_and_csv_export(api_client, world):  # noqa: F811
    api_client.force_authenticate(UserFactory(role="supervisor"))
    data = api_client.get("/api/v1/reports/service/", RANGE).json()
    assert data["totals"]["first_response"]["median"] == 1800.0
    assert data["definitions"]["first_response"].startswith("First response per cycle")
    assert data["definitions"]["first_response_conversation"].startswith("First response time")
    response = api_client.get("/api/v1/reports/service/", {**RANGE, "format": "csv", "table": "by_day"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["day"] for r in rows] == ["2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05"]
    assert [int(r["volume_in"]) for r in rows] == [1, 6, 1, 0]
    everything = api_client.get("/api/v1/reports/gap/", {**RANGE, "format": "csv"}).content.decode()
    assert "# by_channel" in everything and "# met_but_bad" in everything
    assert everything.startswith("# definitions\r\ndefinition,columns,meaning\r\n")


def test_page_csv_export_of_every_table(client, world):  # noqa: F811
    client.force_login(UserFactory(role="admin"))
    for table in ("by_agent", "backlog", "totals"):
        response = client.get("/reports/service/", {**RANGE, "format": "csv", "table": table})
        assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
        assert len(list(csv.reader(io.StringIO(response.content.decode())))) >= 2
    assert client.get("/reports/service/", {**RANGE, "format": "csv", "table": "nope"}).status_code == 404


def test_bad_input_is_a_clear_error(client, api_client, world):  # noqa: F811
    api_client.force_authenticate(UserFactory(role="marketing"))
    response = api_client.get("/api/v1/reports/service/", {"tz": "Mars/Olympus"})
    assert response.status_code == 400 and "time zone" in response.json()["detail"]
    assert api_client.get("/api/v1/reports/service/", {"start": "2026-11-05", "end": "2026-11-01"}).status_code == 400
    assert api_client.get("/api/v1/reports/nope/").status_code == 404
    client.force_login(UserFactory(role="supervisor"))
    page = client.get("/reports/service/", {"start": "yesterday"})
    assert page.status_code == 400 and "YYYY-MM-DD" in page.content.decode()


def test_marketing_reads_reports_without_customer_pii(client, api_client, world):  # noqa: F811
    api_client.force_authenticate(UserFactory(role="marketing"))
    exp = api_client.get("/api/v1/reports/experience/", RANGE).json()
    assert exp["customers_at_risk"] and all("customer" not in r and r["link"] is None
                                            for r in exp["customers_at_risk"])
    gap = api_client.get("/api/v1/reports/gap/", RANGE).json()
    assert all(r["link"] is None for r in gap["met_but_bad"])
    body = api_client.get("/api/v1/reports/marketing/", RANGE).content.decode().lower()
    assert "carla" not in body and "anna" not in body
    service = api_client.get("/api/v1/reports/service/", RANGE).json()
    assert all(r["agent"].startswith(("Agent ", "(nobody)")) for r in service["by_agent"])
    # supervisors do see who the customer is
    api_client.force_authenticate(UserFactory(role="supervisor"))
    exp = api_client.get("/api/v1/reports/experience/", RANGE).json()
    assert any(r.get("customer") == "Carla" for r in exp["customers_at_risk"])


def test_weekly_digest_mails_each_team_lead(world, settings):  # noqa: F811
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    team = world.queue.team
    lead = UserFactory(role="supervisor", email="lead@example.com")
    team.leads.add(lead)
    sent = digest.digests_send_weekly(now=at(9, 7))  # Monday 9 November, 08:00 in Berlin
    assert sent == 1 and len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["lead@example.com"] and "Care EU" in message.subject
    assert "2026-11-02 to 2026-11-08" in message.subject
    assert "Resolved: 3" in message.body and "First response: median 30 min" in message.body
    assert "http://localhost:8000/reports/service/" in message.body or "/reports/service/" in message.body


def test_weekly_digest_is_in_the_beat_schedule():
    from django.conf import settings as django_settings

    from cxinbox.settings import base

    entry = base.CELERY_BEAT_SCHEDULE["reports-weekly-digest"]
    assert entry["task"] == "reports.weekly_digest"
    assert "reports-apply-rollups" in base.CELERY_BEAT_SCHEDULE
    assert django_settings.CELERY_TASK_ROUTES["reports.*"] == {"queue": "reports"}
    from cxinbox.celery import app

    assert app.amqp.router.route({}, "reports.apply_rollups")["queue"].name == "reports"
    assert app.amqp.router.route({}, "reports.weekly_digest")["queue"].name == "reports"


def test_volume_spike_raises_one_alert_to_supervisors_and_marketing(world, settings,  # noqa: F811
                                                                    django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    UserFactory(role="marketing", email="mk@example.com")
    UserFactory(role="agent", email="agent@example.com")
    for i in range(12):
        world.customer_says(f"burst{i}", at(5, 14, i), "Everything is down!! outage again #down", who=f"p{i}")
    world.roll_up(at(5, 14, 30))
    with django_capture_on_commit_callbacks(execute=True):
        with clock(at(5, 14, 30)):
            alerts = spikes.spikes_detect()
    kinds = {a.kind for a in alerts}
    assert kinds == {"volume", "negative"}
    assert SpikeAlert.objects.count() == 2
    assert mail.outbox and all("agent@example.com" not in m.to for m in mail.outbox)
    with clock(at(5, 14, 40)):
        assert spikes.spikes_detect() == []  # raised once per hour
    report = services  # the marketing report lists them
    from apps.reports import selectors

    listed = selectors.marketing_report(params=selectors.ReportParams(start=dt.date(2026, 11, 5),
                                                                      end=dt.date(2026, 11, 5)))["alerts"]
    assert {a["kind"] for a in listed} == {"volume", "negative"}
    assert report


def test_rebuild_command(world, capsys):  # noqa: F811
    from apps.reports.models import MetricRollup

    before = sorted(MetricRollup.objects.values_list("grain", "bucket", "metric", "agent_id", "count"))
    call_command("reports_rebuild")
    assert "Rebuilt from" in capsys.readouterr().out
    assert sorted(MetricRollup.objects.values_list("grain", "bucket", "metric", "agent_id", "count")) == before


# experience: its sentiment shift is three queries (counts, most improved, most worsened), whatever the range
@pytest.mark.parametrize("name,limit", [("service", 10), ("experience", 8), ("marketing", 10), ("gap", 5)])
def test_reports_read_rollups_in_a_few_queries(world, name, limit, django_assert_max_num_queries):  # noqa: F811
    from apps.reports import selectors

    params = selectors.ReportParams(start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 5))
    with django_assert_max_num_queries(limit):
        selectors.report_build(name=name, params=params)


def test_page_query_count(client, world, django_assert_max_num_queries):  # noqa: F811
    client.force_login(UserFactory(role="supervisor"))
    # 16 for the report; the cards' previous period (its cache check and a slice read, no
    # breakdown labels) and the open work sessions add 4 at most
    with django_assert_max_num_queries(20):
        assert client.get("/reports/service/", RANGE).status_code == 200
