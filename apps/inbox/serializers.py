from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.contacts.models import Customer
from apps.core.errors import DomainError

from .models import CannedResponse, Conversation, Message, Note, PriorityBucket, Queue, Status
from .tags import tag_name_check


class IdentitySummarySerializer(serializers.Serializer):
    handle = serializers.CharField()
    display_name = serializers.CharField()
    followers_count = serializers.IntegerField()
    profile_url = serializers.CharField()


class ConversationSerializer(serializers.ModelSerializer):
    channel = serializers.CharField(source="channel_account.provider", read_only=True)
    channel_account = serializers.IntegerField(source="channel_account_id", read_only=True)
    customer = serializers.IntegerField(source="customer_id", read_only=True)
    identity = IdentitySummarySerializer(read_only=True)
    queue = serializers.IntegerField(source="queue_id", read_only=True, allow_null=True)
    assignee = serializers.IntegerField(source="assignee_id", read_only=True, allow_null=True)
    # A method field, not source="get_priority_bucket_display": DRF inspects a callable
    # source's signature on every row (a third of the list's serialising time).
    priority_label = serializers.SerializerMethodField()
    tags = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")

    class Meta:
        model = Conversation
        fields = [
            "id", "status", "priority", "priority_bucket", "priority_label", "channel", "channel_account",
            "customer", "identity", "queue", "assignee", "tags", "subject", "latest_text", "is_public", "language",
            "first_sentiment", "last_sentiment", "last_message_at", "first_response_at", "resolved_at",
            "sla_due_at", "sla_breached", "is_spam", "snoozed_until", "created_at",
        ]

    def get_priority_label(self, obj) -> str:
        return obj.get_priority_bucket_display()


class MessageSerializer(serializers.ModelSerializer):
    author = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = [
            "id", "direction", "kind", "external_id", "in_reply_to_external_id", "author", "is_bot", "text",
            "url", "sent_at", "send_status", "failure_reason", "next_attempt_at", "sentiment", "sentiment_label",
            "language",
        ]

    def get_author(self, obj) -> str:
        if obj.author_user_id:
            return obj.author_user.username
        return obj.author_identity.handle if obj.author_identity_id else ""


class ReplyInputSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=10000, allow_blank=True, trim_whitespace=False)
    private = serializers.BooleanField(default=False)
    draft_started_at = serializers.DateTimeField(required=False, allow_null=True)


class AssignInputSerializer(serializers.Serializer):
    assignee = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class StatusInputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Status.choices)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    survey = serializers.ChoiceField(
        choices=[("none", "No survey"), ("csat", "CSAT (1-5)"), ("ces", "CES (1-7)"), ("nps", "NPS (0-10)")],
        required=False, error_messages={"invalid_choice": 'Pick a survey: "none", "csat", "ces" or "nps".'},
        help_text="With status `resolved` only: the survey sent to the customer by private message. Omitted: the "
                  "channel account's policy (`survey_auto`, \"none\" unless an admin set one). Every survey is held "
                  "back where the channel has no private messages or the customer had one within the channel's "
                  "limit (`survey_cap_days`); the response's `survey` says so.")
    send_survey = serializers.BooleanField(
        required=False, help_text="Older form of `survey`: true is \"csat\", false is \"none\".")

    def validate(self, data):
        wanted = data.pop("send_survey", None)
        # A form-encoded body without the field reads as false (an unticked checkbox): only a sent one counts.
        if wanted is not None and "send_survey" in self.initial_data:
            implied = "csat" if wanted else "none"
            if data.get("survey", implied) != implied:
                raise serializers.ValidationError({"survey": f"send_survey={str(wanted).lower()} means "
                                                             f"survey={implied!r}; send one of them."})
            data["survey"] = implied
        if "survey" in data and data["status"] != Status.RESOLVED:
            raise serializers.ValidationError({"survey": "A survey is sent on resolve: use it with status "
                                                         "\"resolved\"."})
        return data


class SurveyOutcomeSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["csat", "ces", "nps"])
    sent = serializers.BooleanField(help_text="false: held back; `detail` says why")
    detail = serializers.CharField(help_text="The line the resolve form shows the agent")


class StatusResultSerializer(ConversationSerializer):
    """The conversation after a status change, and what became of the resolve's survey."""
    survey = serializers.SerializerMethodField()

    class Meta(ConversationSerializer.Meta):
        fields = [*ConversationSerializer.Meta.fields, "survey"]

    @extend_schema_field(SurveyOutcomeSerializer(allow_null=True))
    def get_survey(self, obj) -> dict | None:
        return self.context.get("survey")


class SnoozeInputSerializer(serializers.Serializer):
    until = serializers.DateTimeField(
        allow_null=True, help_text="When the conversation comes back to the working views (ISO 8601; without an "
                                   "offset, UTC). null wakes it now.")


def _tag_name_valid(value):
    try:
        tag_name_check(value)
    except DomainError as exc:
        raise serializers.ValidationError(exc.detail) from None


class TagNameField(serializers.CharField):
    """A tag name under the one rule (apps/inbox/tags.py) the page's tag box follows too."""

    def __init__(self, **kwargs):
        super().__init__(trim_whitespace=False, validators=[_tag_name_valid], **kwargs)


class TagsInputSerializer(serializers.Serializer):
    add = serializers.ListField(child=TagNameField(), required=False, default=list, max_length=50,
                                help_text="Tags to add (stored lower-case).")
    remove = serializers.ListField(child=TagNameField(), required=False, default=list, max_length=50,
                                   help_text="Tags to remove (case-insensitive); unknown ones are ignored.")

    def validate(self, attrs):
        if not attrs["add"] and not attrs["remove"]:
            raise serializers.ValidationError("Give tags to add or to remove.")
        return attrs


class PriorityInputSerializer(serializers.Serializer):
    priority = serializers.IntegerField(
        min_value=0, max_value=100, required=False,
        help_text="Score 0-100; sets the bucket it falls in (>= 75 urgent, >= 55 high, >= 30 normal, else low).")
    priority_bucket = serializers.ChoiceField(choices=PriorityBucket.choices, required=False,
                                              help_text="0 urgent, 1 high, 2 normal, 3 low.")
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    def validate(self, attrs):
        if "priority" not in attrs and "priority_bucket" not in attrs:
            raise serializers.ValidationError("Give a priority (0-100) or a priority_bucket (0-3).")
        return attrs


class SpamInputSerializer(serializers.Serializer):
    spam = serializers.BooleanField(default=True, help_text="false takes a spam mark back.")


class NoteSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", read_only=True)

    class Meta:
        model = Note
        fields = ["id", "author", "text", "created_at"]
        read_only_fields = ["id", "author", "created_at"]


class QueueSerializer(serializers.ModelSerializer):
    class Meta:
        model = Queue
        fields = ["id", "name", "team", "assignment_mode", "is_default"]
        validators = []  # one default per team: routing.configuration.queue_create/update says so in words


class CannedResponseSerializer(serializers.ModelSerializer):
    class Meta:
        model = CannedResponse
        fields = ["id", "shortcut", "title", "text", "team"]


class CustomerSerializer(serializers.ModelSerializer):
    identities = IdentitySummarySerializer(many=True, read_only=True)

    class Meta:
        model = Customer
        fields = ["id", "name", "tier", "tags", "identities", "created_at"]
