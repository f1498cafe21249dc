from django import forms
from django.contrib import admin

from .models import ChannelAccount, PushDelivery


class ChannelAccountForm(forms.ModelForm):
    # Credentials are write-only in the admin: never shown back.
    new_credentials = forms.JSONField(required=False, help_text="JSON; leave empty to keep the stored credentials")

    class Meta:
        model = ChannelAccount
        # secrets never go back to the browser; hook secrets are rotated through the API
        exclude = ["credentials", "hook_secrets"]

    def save(self, commit=True):
        obj = super().save(commit=False)
        if self.cleaned_data.get("new_credentials"):
            obj.credentials = self.cleaned_data["new_credentials"]
        if commit:
            obj.save()
        return obj


@admin.register(ChannelAccount)
class ChannelAccountAdmin(admin.ModelAdmin):
    form = ChannelAccountForm
    list_display = ("name", "provider", "handle", "is_active", "survey_auto", "survey_cap_days", "last_polled_at",
                    "consecutive_errors", "last_push_at")
    list_filter = ("provider", "is_active", "survey_auto")
    readonly_fields = ("poll_cursor", "last_polled_at", "last_success_at", "last_error", "consecutive_errors",
                       "next_poll_at", "rate_limited_until", "last_push_at", "last_push_error", "push_refused_count")


@admin.register(PushDelivery)
class PushDeliveryAdmin(admin.ModelAdmin):
    # Set a failed delivery back to pending (after fixing its cause): the sweep sends it again.
    list_display = ("pk", "account", "status", "attempts", "created_at", "done_at")
    list_filter = ("status",)
    readonly_fields = ("account", "mentions", "attempts", "last_error", "done_at")
