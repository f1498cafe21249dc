from django.contrib import admin

from apps.core.admin import STORABLE_JSON

from .models import MetricEvent, SpikeAlert, Survey


@admin.register(Survey)
class SurveyAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "conversation", "sent_at", "answered_at", "score")
    list_filter = ("kind",)
    readonly_fields = ("token", "message_id")


@admin.register(SpikeAlert)
class SpikeAlertAdmin(admin.ModelAdmin):
    list_display = ("bucket", "kind", "channel", "value", "baseline", "acknowledged_at")
    list_filter = ("kind", "channel")


@admin.register(MetricEvent)
class MetricEventAdmin(admin.ModelAdmin):
    list_display = ("occurred_at", "kind", "conversation_id", "channel", "value", "rolled_up")
    formfield_overrides = STORABLE_JSON
    list_filter = ("kind", "channel", "rolled_up")
    search_fields = ("key",)
