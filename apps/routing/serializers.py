"""Shapes for the routing API. Validation of meaning (regex compiles, schedules,
one active SLA policy per queue+priority) lives in services.py."""
from rest_framework import serializers

from apps.accounts.models import Team, User
from apps.connectors.models import ChannelAccount
from apps.core.sanitize import data_clean
from apps.inbox.models import CannedResponse, Queue
from apps.inbox.serializers import TagNameField

from .models import BusinessHours, RoutingRule, SlaPolicy

STRING_LIST = serializers.ListField(child=serializers.CharField(max_length=200), required=False, max_length=200)


class RoutingRuleSerializer(serializers.ModelSerializer):
    channels = serializers.ListField(child=serializers.CharField(max_length=32), required=False, max_length=20)
    keywords = serializers.ListField(child=serializers.CharField(max_length=200), required=False, max_length=200)
    languages = serializers.ListField(child=serializers.CharField(max_length=8), required=False, max_length=50)
    sentiments = serializers.ListField(
        child=serializers.ChoiceField(choices=["positive", "neutral", "negative", "not_scored"]), required=False)
    customer_tags = serializers.ListField(child=serializers.CharField(max_length=64), required=False, max_length=100)
    customer_tiers = serializers.ListField(child=serializers.CharField(max_length=16), required=False, max_length=10)
    add_tags = serializers.ListField(child=TagNameField(), required=False, max_length=20)
    channel_accounts = serializers.PrimaryKeyRelatedField(many=True, required=False,
                                                          queryset=ChannelAccount.objects.all())
    set_queue = serializers.PrimaryKeyRelatedField(queryset=Queue.objects.all(), required=False, allow_null=True)
    hours_team = serializers.PrimaryKeyRelatedField(queryset=Team.objects.all(), required=False, allow_null=True)
    assign_agent = serializers.PrimaryKeyRelatedField(queryset=User.objects.filter(is_active=True), required=False,
                                                      allow_null=True)
    assign_team = serializers.PrimaryKeyRelatedField(queryset=Team.objects.all(), required=False, allow_null=True)
    auto_reply = serializers.PrimaryKeyRelatedField(queryset=CannedResponse.objects.all(), required=False,
                                                    allow_null=True)
    priority_boost = serializers.IntegerField(min_value=-50, max_value=50, required=False)

    class Meta:
        model = RoutingRule
        fields = [
            "id", "name", "position", "is_active",
            "channels", "channel_accounts", "keywords", "regex", "languages", "sentiments", "min_followers",
            "max_followers", "customer_tags", "customer_tiers", "hours", "hours_team", "visibility",
            "set_queue", "set_priority_bucket", "priority_boost", "add_tags", "assign_agent", "assign_team",
            "auto_reply", "disposition", "stop", "created_at", "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {"regex": {"help_text": "RE2 regular expression on the message text (case-insensitive, "
                                               "first 5,000 characters; no look-around or back-references)"}}


class ReorderSerializer(serializers.Serializer):
    order = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), min_length=1,
                                  max_length=1000)


class SlaPolicySerializer(serializers.ModelSerializer):
    queue = serializers.PrimaryKeyRelatedField(queryset=Queue.objects.all(), required=False, allow_null=True)

    class Meta:
        model = SlaPolicy
        fields = ["id", "name", "queue", "priority_bucket", "first_response_minutes", "next_response_minutes",
                  "resolution_minutes", "business_hours_only", "is_active"]
        validators = []  # one active policy per queue+priority: services.py says so in words


class HolidaySerializer(serializers.Serializer):
    date = serializers.DateField()
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class BusinessHoursSerializer(serializers.ModelSerializer):
    team = serializers.PrimaryKeyRelatedField(queryset=Team.objects.all())
    schedule = serializers.JSONField(required=False)
    holidays = HolidaySerializer(many=True, required=False)

    class Meta:
        model = BusinessHours
        fields = ["id", "team", "time_zone", "schedule", "holidays"]

    def validate_schedule(self, value):
        # A form body's schedule is JSON text parsed here, past the JSON parser's checks: a NUL
        # fails in jsonb and a lone surrogate echoed in an error message fails to render (500s).
        if data_clean(value) != value:
            raise serializers.ValidationError("The schedule holds a NUL or an unpaired surrogate.")
        return value

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["holidays"] = [{"date": h.date.isoformat(), "name": h.name} for h in instance.holidays.all()]
        return data
