"""Activity keeps presence true: a signed-in page view refreshes last_seen_at
(at most once a minute) and brings an idle-away agent back online."""
import logging

from .services import user_activity_touch

log = logging.getLogger(__name__)


class PresenceActivityMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        # After the view: a logout in this request leaves an anonymous user here.
        # A token request (DRF sets request.auth) is a script, not the person: no presence.
        if getattr(request, "auth", None) is not None or getattr(request, "presence_passive", False):
            return response
        if user is not None and user.is_authenticated and response.status_code < 500:
            try:
                user_activity_touch(user=user)
            except Exception:  # noqa: BLE001 - presence is a nicety, never fail the page for it
                log.warning("presence touch failed for user %s", user.pk, exc_info=True)
        return response


def presence_passive(view):
    """For views a timer calls (live fragments, polling): such a request is not the
    person at work, so it does not keep them online."""
    from functools import wraps

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        request.presence_passive = True
        return view(request, *args, **kwargs)

    return wrapped
