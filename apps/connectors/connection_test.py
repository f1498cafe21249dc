""""Test connection" on the Channels pages: the provider's real client, with the account's
credentials (saved or just typed), against the configured base URL; the outcome in plain
words for the admin, the network's own words beside it."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings

from .models import ChannelAccount, Provider
from .providers import get_provider
from .providers.base import AuthError, PermanentError, ProviderError, RateLimited, TransientError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionResult:
    ok: bool
    message: str  # plain words
    detail: str = ""  # the network's own words (escaped by the page)
    external_user_id: str = ""
    handle: str = ""


def network_address(account: ChannelAccount) -> str:
    """Where the test goes: the account's server or the provider's base URL setting."""
    if account.provider == Provider.TWITTER:
        return settings.TWITTER_API_BASE_URL
    if account.provider == Provider.MASTODON:
        return account.api_base_url or settings.MASTODON_API_BASE_URL
    if account.provider == Provider.BLUESKY:
        return account.api_base_url or settings.BLUESKY_API_BASE_URL
    if account.provider == Provider.REDDIT:
        return f"{settings.REDDIT_URL} and {settings.REDDIT_OAUTH_URL}"
    if account.provider == Provider.EMAIL:
        creds = account.credentials or {}
        imap = f"{creds.get('imap_host', '?')}:{creds.get('imap_port') or ''}".rstrip(":")
        return f"{imap} (IMAP)" + (f" and {creds['smtp_host']} (SMTP)" if creds.get("smtp_host") else "")
    return ""


def connection_test(account: ChannelAccount) -> ConnectionResult:
    """Never raises: every failure is a result with its reason."""
    where = network_address(account)
    label = Provider(account.provider).label if account.provider in Provider.values else account.provider
    try:
        found = get_provider(account).connection_check()
    except AuthError as exc:
        return ConnectionResult(False, f"{label} refused these credentials. Check that each value was copied whole, "
                                       "belongs to the brand account and has not been revoked or regenerated.",
                                exc.reason)
    except RateLimited as exc:
        return ConnectionResult(False, f"{label} asks to slow down (rate limit) and did not say whether the "
                                       f"credentials are right; try again after {exc.reset_at:%H:%M} UTC.", exc.reason)
    except PermanentError as exc:
        return ConnectionResult(False, f"{label} refused the request: check the handle, user id or folder.",
                                exc.reason)
    except TransientError as exc:
        reason = exc.reason
        if "in time" in reason:
            text = (f"{label} did not answer in time (within {settings.PROVIDER_TIMEOUT_SECONDS:g} s at {where}); "
                    "try again, or check the server address.")
        elif "unreachable" in reason or "cannot reach" in reason or "connection failed" in reason:
            text = f"Could not reach {label} at {where}: check the address, or whether this server may go out to it."
        elif "server error" in reason:
            text = f"{label} had a server error: the credentials were not checked; try again in a few minutes."
        else:
            text = f"{label} answered in a way cxinbox could not read; try again."
        return ConnectionResult(False, text, reason)
    except ProviderError as exc:  # pragma: no cover - every kind is above
        return ConnectionResult(False, f"{label} refused the request.", exc.reason)
    except Exception as exc:  # a client library's own error on odd input: a result, never a 500
        log.warning("connection test of %s account %s failed", account.provider, account.pk, exc_info=True)
        return ConnectionResult(False, f"The test could not run ({exc.__class__.__name__}): check the values entered.")
    return ConnectionResult(True, f"Connected to {label}.", found.detail, found.external_user_id, found.handle)
