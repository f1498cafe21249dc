from django.contrib import admin

from .models import Queue


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "assignment_mode", "is_default")
