"""Report pages (supervisors, admins, marketing) and the public survey page.

Each page parses the query (date range, time zone, filters), builds the report
from the rollups, and renders charts, tables and the definitions it uses.
`?format=csv` (optionally `&table=<name>`) returns the same tables as CSV."""
from __future__ import annotations

from zoneinfo import available_timezones

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect

from apps.accounts.models import Role
from apps.accounts.permissions import user_has_role
from apps.connectors.models import Provider
from apps.core.errors import Conflict, DomainError

from . import cache as report_cache
from . import export, selectors, surveys
from .charts import charts_for, kpis_for
from .models import Survey
from .params import params_from_query

REPORT_ROLES = (Role.SUPERVISOR, Role.ADMIN, Role.MARKETING)
TITLES = {"service": "Service", "experience": "Experience", "marketing": "Marketing sentiment",
          "gap": "Service-experience gap"}
COMMON_ZONES = ["UTC", "Europe/London", "Europe/Berlin", "America/New_York", "America/Chicago",
                "America/Los_Angeles", "America/Sao_Paulo", "Asia/Kolkata", "Asia/Tokyo", "Australia/Sydney"]


def require_report_role(user) -> None:
    if not user_has_role(user, *REPORT_ROLES):
        raise PermissionDenied("Reports are for supervisors, admins and marketing.")


def csv_response(report: dict, table: str | None) -> HttpResponse:
    if table and table not in export.TABLES[report["report"]]:
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
    return render(request, "reports/index.html", {"titles": TITLES, "alerts": selectors.alerts_recent()})


@login_required
@never_cache
def report_page(request, name):
    require_report_role(request.user)
    if name not in selectors.REPORTS:
        raise Http404("No such report.")
    error = None
    try:
        params = params_from_query(request.GET, request.user)
    except DomainError as exc:
        error = exc.detail
        params = params_from_query({"tz": "UTC"}, request.user)
    report = report_cache.report_cached(name=name, params=params)
    if request.GET.get("format") == "csv" and not error:
        return csv_response(report, request.GET.get("table"))
    zones = COMMON_ZONES if params.tz.key in COMMON_ZONES else [params.tz.key, *COMMON_ZONES]
    tables = []
    for table in export.TABLES[name]:
        columns, rows = export.table(report, table)
        tables.append({"name": table, "caption": table.replace(".", ": ").replace("_", " ").capitalize(),
                       "columns": columns, "rows": rows})
    return render(request, "reports/report.html", {
        "name": name, "title": TITLES[name], "titles": TITLES, "report": report, "params": params,
        "error": error, "zones": zones, "channels": Provider.choices, "tables": tables,
        "query": _query_without_format(request.GET), "chart_data": charts_for(report), "kpis": kpis_for(report), "alerts": selectors.alerts_recent(),
    }, status=400 if error else 200)


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
