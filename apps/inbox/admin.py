from django.contrib import admin

from apps.core.admin import STORABLE_JSON

from .models import CannedResponse, Conversation, ConversationEvent, Message, Note, Tag


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ("direction", "kind", "external_id", "text", "send_status", "sent_at")
    readonly_fields = fields


class EventInline(admin.TabularInline):
    model = ConversationEvent
    extra = 0
    fields = ("created_at", "kind", "actor", "data")
    readonly_fields = fields


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("id", "identity", "channel_account", "status", "priority", "queue", "assignee", "last_message_at")
    list_filter = ("status", "priority_bucket", "channel_account", "queue")
    search_fields = ("identity__handle", "messages__text")
    raw_id_fields = ("customer", "identity", "assignee", "last_assignee")
    inlines = [MessageInline, EventInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "conversation", "direction", "send_status", "external_id", "sent_at")
    list_filter = ("direction", "send_status", "kind")
    search_fields = ("text", "external_id")
    raw_id_fields = ("conversation", "author_identity", "author_user")
    formfield_overrides = STORABLE_JSON


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):
    list_display = ("id", "conversation", "author", "created_at")
    raw_id_fields = ("conversation",)


@admin.register(ConversationEvent)
class ConversationEventAdmin(admin.ModelAdmin):
    list_display = ("id", "conversation", "kind", "actor", "created_at")
    formfield_overrides = STORABLE_JSON
    list_filter = ("kind",)
    raw_id_fields = ("conversation",)


admin.site.register(Tag)
admin.site.register(CannedResponse)
