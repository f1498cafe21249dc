"""API token authentication: `Authorization: Token <key>` (or `Bearer <key>`).

Keys are stored hashed (ApiToken.key_hash); a revoked key gets a 401. A key
this class does not know is left to DRF's own TokenAuthentication, which
answers 401 for it too."""
from django.utils import timezone
from rest_framework import authentication, exceptions

from .models import ApiToken, token_hash

LAST_USED_GRANULARITY_SECONDS = 60


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("token", "bearer")

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower().decode(errors="replace") not in self.keywords:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header.")
        try:
            key = parts[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid token header.") from None
        token = ApiToken.objects.select_related("user").filter(key_hash=token_hash(key)).first()
        if token is None:
            if parts[0].lower() == b"bearer":
                raise exceptions.AuthenticationFailed("Invalid token.")
            return None  # maybe a DRF authtoken key: the next class decides
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This token was revoked.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > LAST_USED_GRANULARITY_SECONDS:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request):
        return "Token"
