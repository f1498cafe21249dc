from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from apps.core.admin import STORABLE_JSON

from .models import ApiToken, AuditEntry, Team, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "email", "role", "presence", "capacity", "is_active")
    list_filter = ("role", "presence", "is_active")
    formfield_overrides = STORABLE_JSON
    fieldsets = BaseUserAdmin.fieldsets + (
        ("Support", {"fields": ("role", "presence", "presence_manual", "capacity", "channel_capacity", "signature",
                                "time_zone")}),
    )


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "time_zone")
    filter_horizontal = ("members", "leads")


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: an audit trail that can be edited is no audit trail."""

    list_display = ("created_at", "actor", "action", "target", "ip_address")
    list_filter = ("action",)
    search_fields = ("target", "actor__username")
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    readonly_fields = ("user", "name", "prefix", "key_hash", "created_at", "last_used_at")

    def has_add_permission(self, request):
        return False  # tokens are made by their owner, who sees the key once
