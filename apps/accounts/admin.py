from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import Team, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "email", "role", "presence", "capacity", "is_active")
    list_filter = ("role", "presence", "is_active")
    fieldsets = BaseUserAdmin.fieldsets + (
        ("Support", {"fields": ("role", "presence", "capacity", "signature", "time_zone")}),
    )


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "time_zone")
    filter_horizontal = ("members", "leads")
