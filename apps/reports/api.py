"""GET /api/v1/reports/<name>/: the same data as the pages, JSON or ?format=csv."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import user_has_role

from . import cache as report_cache
from . import export, selectors
from .params import params_from_query
from .views import REPORT_ROLES


class CanReadReports(BasePermission):
    message = "Reports are for supervisors, admins and marketing."

    def has_permission(self, request, view):
        return user_has_role(request.user, *REPORT_ROLES)


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if not isinstance(data, dict) or "report" not in data:
            # errors stay readable: {"detail": ...} as one CSV cell
            return f"detail\n{(data or {}).get('detail', '')}\n"
        request = renderer_context["request"] if renderer_context else None
        table = request.query_params.get("table") if request else None
        return export.to_csv(data, table)


PARAMS = [
    OpenApiParameter("start", OpenApiTypes.DATE, description="first local day (default: 6 days before end)"),
    OpenApiParameter("end", OpenApiTypes.DATE, description="last local day (default: today)"),
    OpenApiParameter("tz", OpenApiTypes.STR, description="IANA time zone (default: the user's)"),
    OpenApiParameter("channel", OpenApiTypes.STR, description="provider, e.g. twitter"),
    OpenApiParameter("account", OpenApiTypes.INT), OpenApiParameter("queue", OpenApiTypes.INT),
    OpenApiParameter("team", OpenApiTypes.INT), OpenApiParameter("agent", OpenApiTypes.INT),
    OpenApiParameter("table", OpenApiTypes.STR, description="with format=csv: one table only"),
    OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"]),
]


class ReportView(APIView):
    permission_classes = [CanReadReports]
    renderer_classes = [JSONRenderer, CSVRenderer]

    @extend_schema(parameters=PARAMS, responses={200: OpenApiTypes.OBJECT},
                   description="service | experience | marketing | gap. Definitions are in the response.")
    def get(self, request, name: str):
        if name not in selectors.REPORTS:
            raise NotFound("No such report.")
        table = request.query_params.get("table")
        if table and not export.table_known(name, table):
            raise NotFound("No such table.")
        params = params_from_query(request.query_params, request.user)
        report = report_cache.report_cached(name=name, params=params)
        response = Response(report)
        if request.accepted_renderer.format == "csv":
            response["Content-Disposition"] = (
                f'attachment; filename="{name}-{table or "all"}-{params.start}-{params.end}.csv"')
        return response
