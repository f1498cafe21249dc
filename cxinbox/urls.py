from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from apps.connectors.api import ChannelAccountViewSet
from apps.core.views import healthz, home
from apps.inbox.api import CannedResponseViewSet, ConversationViewSet, CustomerViewSet, QueueViewSet

router = DefaultRouter()
router.register("conversations", ConversationViewSet, basename="conversation")
router.register("queues", QueueViewSet, basename="queue")
router.register("canned-responses", CannedResponseViewSet, basename="canned-response")
router.register("customers", CustomerViewSet, basename="customer")
router.register("channel-accounts", ChannelAccountViewSet, basename="channel-account")

urlpatterns = [
    path("", home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("inbox/", include("apps.inbox.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
