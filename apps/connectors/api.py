from rest_framework import serializers, viewsets

from apps.accounts.permissions import IsAdmin

from .models import ChannelAccount


class ChannelAccountSerializer(serializers.ModelSerializer):
    # Write-only: credentials go in, never come out.
    credentials = serializers.JSONField(write_only=True, required=False)

    class Meta:
        model = ChannelAccount
        fields = [
            "id", "provider", "name", "handle", "external_user_id", "credentials", "is_active", "time_zone",
            "last_polled_at", "last_success_at", "last_error", "consecutive_errors", "rate_limited_until",
        ]
        read_only_fields = ["last_polled_at", "last_success_at", "last_error", "consecutive_errors",
                            "rate_limited_until"]


class ChannelAccountViewSet(viewsets.ModelViewSet):
    serializer_class = ChannelAccountSerializer
    permission_classes = [IsAdmin]
    queryset = ChannelAccount.objects.order_by("name")
    pagination_class = None
