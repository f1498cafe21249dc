from django.contrib import admin

from apps.core.admin import STORABLE_JSON

from .models import Customer, SocialIdentity


class SocialIdentityInline(admin.TabularInline):
    model = SocialIdentity
    extra = 0


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "tier", "created_at")
    formfield_overrides = STORABLE_JSON
    search_fields = ("name", "email", "identities__handle")
    inlines = [SocialIdentityInline]


@admin.register(SocialIdentity)
class SocialIdentityAdmin(admin.ModelAdmin):
    list_display = ("provider", "handle", "display_name", "followers_count", "customer")
    list_filter = ("provider",)
    search_fields = ("handle", "display_name", "external_id")
