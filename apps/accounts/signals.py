"""Login audit and presence from the session lifecycle (connected in apps.py)."""
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from .models import Presence
from .services import audit_record, user_presence_set


def client_ip(request) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


@receiver(user_logged_in, dispatch_uid="accounts.login")
def on_login(sender, request, user, **kwargs):
    audit_record(actor=user, action="auth.login", target=user.username, ip_address=client_ip(request))
    user_presence_set(user=user, presence=Presence.ONLINE, manual=False)


@receiver(user_logged_out, dispatch_uid="accounts.logout")
def on_logout(sender, request, user, **kwargs):
    if user is None:
        return
    audit_record(actor=user, action="auth.logout", target=user.username, ip_address=client_ip(request))
    user_presence_set(user=user, presence=Presence.OFFLINE, manual=False)


@receiver(user_login_failed, dispatch_uid="accounts.login_failed")
def on_login_failed(sender, credentials, request=None, **kwargs):
    # credentials has the password scrubbed by Django; keep only the username.
    username = str((credentials or {}).get("username", ""))[:150]
    audit_record(actor=None, action="auth.login_failed", target=username, ip_address=client_ip(request))
