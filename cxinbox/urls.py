from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from apps.connectors.api import ChannelAccountViewSet
from apps.core.views import favicon, healthz
from apps.accounts.views import landing
from apps.accounts.api import ApiTokenViewSet, AuditLogView, BulkAssignView, DashboardView, TeamViewSet, UserViewSet
from apps.inbox.api import CannedResponseViewSet, ConversationViewSet, CustomerViewSet, QueueViewSet
from apps.ops.views import metrics as ops_metrics
from apps.reports.api import ReportView
from apps.reports.views import survey_page
from apps.routing.api import BusinessHoursViewSet, RoutingRuleViewSet, SlaPolicyViewSet

# No ".json" suffix routes: viewset actions do not take a `format` argument (they
# answered 500 there); ?format=json|csv still picks the renderer.


class IdRouter(DefaultRouter):
    """Every resource is found by a numeric id: /users/abc/capacity/ or an id past
    bigint is a 404 {"detail": ...} at the URL, not a ValueError (500) in a view, and the
    schema says the id is an integer."""

    def get_lookup_regex(self, viewset, lookup_prefix=""):
        lookup_field = getattr(viewset, "lookup_field", "pk")
        lookup_url_kwarg = getattr(viewset, "lookup_url_kwarg", None) or lookup_field
        value = getattr(viewset, "lookup_value_regex", "[0-9]{1,18}")
        return f"(?P<{lookup_prefix}{lookup_url_kwarg}>{value})"


router = IdRouter()
router.include_format_suffixes = False
router.register("conversations", ConversationViewSet, basename="conversation")
router.register("queues", QueueViewSet, basename="queue")
router.register("canned-responses", CannedResponseViewSet, basename="canned-response")
router.register("customers", CustomerViewSet, basename="customer")
router.register("channel-accounts", ChannelAccountViewSet, basename="channel-account")
router.register("users", UserViewSet, basename="user")
router.register("teams", TeamViewSet, basename="team")
router.register("tokens", ApiTokenViewSet, basename="token")
router.register("rules", RoutingRuleViewSet, basename="rule")
router.register("sla-policies", SlaPolicyViewSet, basename="sla-policy")
router.register("business-hours", BusinessHoursViewSet, basename="business-hours")

urlpatterns = [
    path("", landing, name="home"),  # each role to its own work (apps/accounts/views.py)
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon, name="favicon"),
    path("metrics", ops_metrics, name="metrics"),  # Prometheus; token or allow-list (apps/ops/views.py)
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("inbox/", include("apps.inbox.urls")),
    path("connectors/", include("apps.connectors.urls")),
    path("hooks/", include("apps.connectors.hook_urls")),
    path("admin/", admin.site.urls),
    path("account/", include("apps.accounts.urls")),
    path("supervisor/", include("apps.accounts.supervisor_urls")),
    path("routing/", include("apps.routing.urls")),
    # before the router: its conversations/<pk>/ would take "bulk-assign" as a pk
    path("api/v1/conversations/bulk-assign/", BulkAssignView.as_view(), name="api-bulk-assign"),
    path("api/v1/supervisor/dashboard/", DashboardView.as_view(), name="api-supervisor-dashboard"),
    path("api/v1/audit/", AuditLogView.as_view(), name="api-audit"),
    path("reports/", include("apps.reports.urls")),
    path("survey/<str:token>/", survey_page, name="survey"),
    path("api/v1/reports/<slug:name>/", ReportView.as_view(), name="api-report"),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
]

# JSON {"detail": ...} under /api/ even when no URL matched or the server failed.
handler403 = "apps.core.views.permission_denied"
handler404 = "apps.core.views.not_found"
handler500 = "apps.core.views.server_error"
