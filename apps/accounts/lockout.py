"""Login lockout (django-axes) and API throttles: who the client is behind a proxy,
and a good login clearing only its own user's failures.

The client address is REMOTE_ADDR unless TRUSTED_PROXY_COUNT proxies are declared:
each proxy appends the address it received the request from to X-Forwarded-For,
so the client's is that many entries from the right. Entries further left are
whatever the client sent and are never trusted (anyone could name any address)."""
import ipaddress

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


def client_ip_address(request) -> str | None:
    remote = request.META.get("REMOTE_ADDR")
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < count:
        return remote  # not through all the proxies: the nearest peer is all we know
    candidate = forwarded[-count]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


@receiver(user_logged_in)
def _login_clears_own_failures(sender, request, user, **kwargs):
    """A good login clears that user's failures, not the address's: with axes' own
    reset (AXES_RESET_ON_SUCCESS) a sprayer could log in to an account of their own
    between guesses and wipe the count that locks their address."""
    from axes.models import AccessAttempt

    AccessAttempt.objects.filter(username=user.get_username()).delete()


class AnonThrottle(AnonRateThrottle):
    """Rates read from the settings at each request (DRF's are fixed at import),
    so they can be changed per environment and in tests; "" turns a throttle off."""

    def get_rate(self):
        return settings.API_THROTTLE_ANON_RATE or None

    def get_ident(self, request):
        return client_ip_address(request)


class UserThrottle(UserRateThrottle):
    def get_rate(self):
        return settings.API_THROTTLE_USER_RATE or None

    def get_ident(self, request):
        return client_ip_address(request)
