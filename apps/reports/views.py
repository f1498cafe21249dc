"""Report pages (supervisors, admins, marketing) and the public survey page.

Each page parses the query (date range, time zone, filters), builds the report
from the rollups, and renders charts, tables and the definitions it uses.
`?format=csv` (optionally `&table=<name>`) returns the same tables as CSV."""
from __future__ import annotations

import datetime as dt
from zoneinfo import available_timezones

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST

from apps.accounts.models import Role
from apps.accounts.permissions import user_has_role
from apps.connectors.models import Provider
from apps.core.errors import Conflict, DomainError
from apps.core.params import zone_param

from . import cache as report_cache
from . import export, selectors, spikes, surveys
from .charts import charts_for
from .kpis import kpis_for
from .models import SpikeAlert, Survey
from .params import form_errors, params_from_query, previous_period
from .tables import tables_for

REPORT_ROLES = (Role.SUPERVISOR, Role.ADMIN, Role.MARKETING)
TITLES = {"service": "Service", "experience": "Experience", "marketing": "Marketing sentiment",
          "gap": "Service-experience gap"}
COMMON_ZONES = ["UTC", "Europe/London", "Europe/Berlin", "America/New_York", "America/Chicago",
                "America/Los_Angeles", "America/Sao_Paulo", "Asia/Kolkata", "Asia/Tokyo", "Australia/Sydney"]


def require_report_role(user) -> None:
    if not user_has_role(user, *REPORT_ROLES):
        raise PermissionDenied("Reports are for supervisors, admins and marketing.")


def csv_response(report: dict, table: str | None) -> HttpResponse:
    if table and not export.table_known(report["report"], table):
        raise Http404("No such table.")
    body = export.to_csv(report, table)
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    p = report["params"]
    response["Content-Disposition"] = (
        f'attachment; filename="{report["report"]}-{table or "all"}-{p["start"]}-{p["end"]}.csv"')
    return response


@login_required
def report_index(request):
    require_report_role(request.user)
    return render(request, "reports/index.html", {
        "titles": TITLES, "alerts": selectors.alerts_for_user(user=request.user),
        "can_acknowledge_for_all": user_has_role(request.user, Role.SUPERVISOR, Role.ADMIN)})


@login_required
@never_cache
def report_page(request, name):
    require_report_role(request.user)
    if name not in selectors.REPORTS:
        raise Http404("No such report.")
    errors = form_errors(request.GET, request.user)
    context = {"name": name, "title": TITLES[name], "titles": TITLES, "errors": errors,
               "form": _form_values(request.GET, request.user), "channels": Provider.choices,
               "query": _query_without_format(request.GET)}
    context["zones"] = zones_with(context["form"]["tz"])
    if errors:
        # Nothing is shown rather than another period than the one asked for.
        return render(request, "reports/report.html", context, status=400)
    params = params_from_query(request.GET, request.user)
    # the form shows the period as read (a missing date filled in), the same as the page says
    context["form"].update(start=params.start.isoformat(), end=params.end.isoformat(), tz=params.tz.key)
    report = report_cache.report_cached(name=name, params=params)
    if request.GET.get("format") == "csv":
        return csv_response(report, request.GET.get("table"))
    before = previous_period(params)
    previous = report_cache.report_cached(name=name, params=before) if before else None
    in_progress = selectors.handle_time_in_progress(params) if name == "service" else None
    open_tables, folded_tables = tables_for(report)
    lo, hi = params.utc_range
    context.update({
        "report": report, "params": params, "previous_params": before,
        "kpis": kpis_for(report, previous, in_progress=in_progress), "charts": charts_for(report),
        "open_tables": open_tables, "folded_tables": folded_tables,
        "alerts": selectors.alerts_for_user(user=request.user, lo=lo, hi=hi),
        "can_acknowledge_for_all": user_has_role(request.user, Role.SUPERVISOR, Role.ADMIN),
    })
    return render(request, "reports/report.html", context)


@login_required
@require_POST
def alert_acknowledge(request, pk):
    """A supervisor or admin acknowledges a spike alert for everyone; a marketing user
    dismisses it from their own pages (spikes.alert_acknowledge). CSRF-protected form."""
    require_report_role(request.user)
    alert = get_object_or_404(SpikeAlert, pk=pk)
    outcome = spikes.alert_acknowledge(alert=alert, user=request.user)
    flash.success(request, "Alert acknowledged: it no longer shows on the reports." if outcome == "acknowledged"
                  else "Alert dismissed from your reports.")
    return redirect(_safe_next(request))


def _safe_next(request) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return reverse("reports:index")


def _form_values(query, user) -> dict:
    """What the form shows: what the person sent (kept, even when refused), else the defaults."""
    tz = (query.get("tz") or getattr(user, "time_zone", "") or "UTC").strip()[:64]
    today = timezone.now().date()
    try:
        today = timezone.now().astimezone(zone_param("tz", tz)).date()
    except DomainError:
        pass
    end = (query.get("end") or "").strip()[:40]
    start = (query.get("start") or "").strip()[:40]
    if not end and not start:
        start, end = (today - dt.timedelta(days=6)).isoformat(), today.isoformat()
    return {"start": start, "end": end, "tz": tz, "channel": (query.get("channel") or "").strip()[:32]}


def zones_with(tz: str) -> list[str]:
    return COMMON_ZONES if tz in COMMON_ZONES else [tz, *COMMON_ZONES]


@never_cache
@csrf_protect
def survey_page(request, token):
    """Public: no login. The signed token names the survey; one answer each."""
    brand = {"brand_name": settings.BRAND_NAME}  # the customer's page: the brand's name, not the product's
    try:
        survey = surveys.survey_from_signed(token)
    except Survey.DoesNotExist:
        raise Http404("This survey link is not valid.") from None
    except DomainError as exc:
        return render(request, "reports/survey.html", {**brand, "closed": exc.detail}, status=410)
    low, high = survey.scale
    context = {**brand, "survey": survey, "scores": list(range(low, high + 1)), "low": low, "high": high}
    if survey.answered_at is not None:
        return render(request, "reports/survey.html", {**context, "closed": "Thanks, your answer is recorded."})
    if request.method == "POST":
        try:
            surveys.survey_answer(survey=survey, score=request.POST.get("score"),
                                   comment=request.POST.get("comment", ""))
        except Conflict as exc:  # answered meanwhile (a double submit): that answer stands
            return render(request, "reports/survey.html", {**context, "closed": exc.detail})
        except DomainError as exc:
            return render(request, "reports/survey.html", {**context, "error": exc.detail}, status=400)
        return render(request, "reports/survey.html", {**context, "closed": "Thank you! Your answer is recorded."})
    return render(request, "reports/survey.html", context)


def _query_without_format(query) -> str:
    query = query.copy()
    query.pop("format", None)
    query.pop("table", None)
    return query.urlencode()


def zone_names() -> list[str]:
    return sorted(available_timezones())
