"""The weekly digest: one e-mail per team to its leads, from the rollups."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import timezone

from apps.accounts.models import Team

from . import selectors


def digest_for_team(*, team: Team, today: dt.date) -> dict:
    tz = ZoneInfo(team.time_zone or "UTC")
    end = today - dt.timedelta(days=1)
    params = selectors.ReportParams(start=end - dt.timedelta(days=6), end=end, tz=tz, team_id=team.pk)
    return {"team": team, "params": params, "service": selectors.service_report(params=params),
            "experience": selectors.experience_report(params=params),
            "site_url": getattr(settings, "SITE_URL", "").rstrip("/")}


def digests_send_weekly(*, now: dt.datetime | None = None) -> int:
    now = now or timezone.now()
    sent = 0
    for team in Team.objects.prefetch_related("leads"):
        recipients = sorted({u.email for u in team.leads.all() if u.email and u.is_active})
        if not recipients:
            continue
        today = now.astimezone(ZoneInfo(team.time_zone or "UTC")).date()
        context = digest_for_team(team=team, today=today)
        body = render_to_string("reports/digest.txt", context)
        send_mail(f"[cxinbox] Weekly report for {team.name}: {context['params'].start} to {context['params'].end}",
                  body, None, recipients)
        sent += 1
    return sent
