from rest_framework import serializers

from .models import ApiToken, Presence, Team, User


class UserSerializer(serializers.ModelSerializer):
    display_name = serializers.CharField(read_only=True)
    teams = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    # Open conversations assigned: always in the response (the schema says so); null
    # where it was not counted.
    load = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = User
        fields = ["id", "username", "display_name", "role", "presence", "last_seen_at", "capacity",
                  "channel_capacity", "teams", "load", "time_zone"]
        read_only_fields = fields


class TeamSerializer(serializers.ModelSerializer):
    members = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    leads = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Team
        fields = ["id", "name", "time_zone", "members", "leads"]
        read_only_fields = ["id", "members", "leads"]


class TeamMembersInputSerializer(serializers.Serializer):
    members = serializers.ListField(child=serializers.IntegerField(), allow_empty=True)
    leads = serializers.ListField(child=serializers.IntegerField(), required=False)


class PresenceInputSerializer(serializers.Serializer):
    presence = serializers.ChoiceField(choices=Presence.choices)


class CapacityInputSerializer(serializers.Serializer):
    capacity = serializers.IntegerField(min_value=0, max_value=500)
    channel_capacity = serializers.DictField(child=serializers.IntegerField(min_value=0, max_value=500),
                                             required=False, default=dict)


class TargetSerializer(serializers.Serializer):
    """Exactly one of agent, team, queue (ids); none of them means "back to the queue" where allowed."""

    agent = serializers.IntegerField(required=False)
    team = serializers.IntegerField(required=False)
    queue = serializers.IntegerField(required=False)


class BulkAssignInputSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(), required=False)
    filter = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    to = TargetSerializer()
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    def validate(self, attrs):
        if ("ids" in attrs) == ("filter" in attrs):
            raise serializers.ValidationError("Send either ids or filter (all matching it).")
        return attrs


class WorkloadInputSerializer(serializers.Serializer):
    to = TargetSerializer(required=False)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    go_offline = serializers.BooleanField(default=False)


class BulkResultSerializer(serializers.Serializer):
    matched = serializers.IntegerField()
    moved = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    not_visible = serializers.IntegerField()
    queued = serializers.IntegerField(required=False, help_text="Moving in the background (large moves)")


class ApiTokenSerializer(serializers.ModelSerializer):
    active = serializers.BooleanField(source="is_active", read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at", "active"]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at", "revoked_at", "active"]


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    key = serializers.CharField(read_only=True, help_text="Shown once: store it now")

    class Meta(ApiTokenSerializer.Meta):
        fields = ApiTokenSerializer.Meta.fields + ["key"]


class AuditRowSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    id = serializers.CharField(source="row_id")
    source = serializers.CharField()
    actor = serializers.CharField()
    action = serializers.CharField()
    target = serializers.CharField()
    conversation_id = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField()
    data = serializers.DictField()
