from django.urls import reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.accounts.models import Role
from apps.accounts.permissions import IsAdmin, user_has_role
from apps.ingest import polling

from . import health, selectors
from .models import ChannelAccount


class ChannelAccountSerializer(serializers.ModelSerializer):
    # Write-only: credentials go in, never come out.
    credentials = serializers.JSONField(write_only=True, required=False)
    hook_url = serializers.SerializerMethodField()

    class Meta:
        model = ChannelAccount
        fields = [
            "id", "provider", "name", "handle", "external_user_id", "credentials", "is_active", "time_zone",
            "api_base_url", "hook_url", "last_polled_at", "last_success_at", "last_error", "consecutive_errors",
            "next_poll_at", "rate_limited_until", "last_push_at", "last_push_error", "push_refused_count",
        ]
        read_only_fields = ["last_polled_at", "last_success_at", "last_error", "consecutive_errors", "next_poll_at",
                            "rate_limited_until", "last_push_at", "last_push_error", "push_refused_count"]

    def get_hook_url(self, obj) -> str:
        path = reverse("hook_receive", kwargs={"provider": obj.provider, "account_id": obj.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class AccountHealthSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="account.pk")
    provider = serializers.CharField(source="account.provider")
    name = serializers.CharField(source="account.name")
    handle = serializers.CharField(source="account.handle")
    state = serializers.CharField()
    polls = serializers.BooleanField()
    lag_seconds = serializers.IntegerField(allow_null=True)
    falling_behind = serializers.BooleanField()
    retry_in_seconds = serializers.IntegerField(allow_null=True)
    last_polled_at = serializers.DateTimeField(source="account.last_polled_at", allow_null=True)
    last_success_at = serializers.DateTimeField(source="account.last_success_at", allow_null=True)
    last_error = serializers.CharField(source="account.last_error")
    consecutive_errors = serializers.IntegerField(source="account.consecutive_errors")
    next_poll_at = serializers.DateTimeField(source="account.next_poll_at", allow_null=True)
    rate_limited_until = serializers.DateTimeField(source="account.rate_limited_until", allow_null=True)
    last_push_at = serializers.DateTimeField(source="account.last_push_at", allow_null=True)
    push_refused_count = serializers.IntegerField(source="account.push_refused_count")
    last_push_error = serializers.CharField(source="account.last_push_error")
    push_deliveries_failed = serializers.IntegerField(source="push_failed")
    push_deliveries_pending = serializers.IntegerField(source="push_pending")


class ChannelAccountViewSet(viewsets.ModelViewSet):
    serializer_class = ChannelAccountSerializer
    permission_classes = [IsAdmin]
    queryset = ChannelAccount.objects.order_by("name")
    pagination_class = None

    def get_permissions(self):
        if self.action in ("health", "poll"):
            return [_IsSupervisorOrAdmin()]
        return super().get_permissions()

    @extend_schema(responses=AccountHealthSerializer(many=True))
    @action(detail=False, methods=["get"])
    def health(self, request):
        """Last poll, lag, errors and rate-limit state per account (supervisors and admins)."""
        return Response(AccountHealthSerializer(selectors.account_health_list(), many=True).data)

    @extend_schema(request=None, responses={202: inline_serializer("PollQueued", {"detail": serializers.CharField()})})
    @action(detail=True, methods=["post"])
    def poll(self, request, pk=None):
        """Poll this account now: lifts its backoff (after credentials were fixed)."""
        account = self.get_object()
        polling.account_poll_retry(account=account, actor=request.user)
        return Response({"detail": f"{account} will be polled now."}, status=202)

    @extend_schema(request=None, responses=inline_serializer(
        "HookSecrets", {"inbound_token": serializers.CharField(), "signing_secret": serializers.CharField(),
                        "hook_url": serializers.CharField()}))
    @action(detail=True, methods=["post"], url_path="hook-secrets")
    def hook_secrets(self, request, pk=None):
        """New inbound token and signing secret for push delivery, shown this once (admins)."""
        account = self.get_object()
        new = health.account_hook_secrets_rotate(account=account, actor=request.user)
        return Response({**new, "hook_url": ChannelAccountSerializer(account, context={"request": request}).data["hook_url"]})


class _IsSupervisorOrAdmin(IsAdmin):
    message = "Only supervisors and admins can do this."

    def has_permission(self, request, view):
        return user_has_role(request.user, Role.SUPERVISOR, Role.ADMIN)
