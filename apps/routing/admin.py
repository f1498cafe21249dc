from django.contrib import admin

from apps.core.admin import STORABLE_JSON
from apps.inbox.models import Queue

from .models import BusinessHours, ConversationRouting, Holiday, RoutingRule, SlaPolicy


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "assignment_mode", "is_default")


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    list_display = ("position", "name", "is_active", "set_queue", "set_priority_bucket", "disposition", "stop")
    list_display_links = ("name",)
    list_filter = ("is_active",)
    filter_horizontal = ("channel_accounts",)
    formfield_overrides = STORABLE_JSON


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    list_display = ("name", "queue", "priority_bucket", "first_response_minutes", "next_response_minutes",
                    "resolution_minutes", "business_hours_only", "is_active")


class HolidayInline(admin.TabularInline):
    model = Holiday
    extra = 0


@admin.register(BusinessHours)
class BusinessHoursAdmin(admin.ModelAdmin):
    list_display = ("team", "time_zone")
    formfield_overrides = STORABLE_JSON
    inlines = [HolidayInline]


@admin.register(ConversationRouting)
class ConversationRoutingAdmin(admin.ModelAdmin):
    list_display = ("conversation", "waiting_since", "sla_next_check_at", "bucket_set")
    raw_id_fields = ("conversation",)
    readonly_fields = ("inputs", "reasons", "breached_targets")
