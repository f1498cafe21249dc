"""The connector-health page (admins and supervisors)."""
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.models import Role
from apps.accounts.permissions import user_has_role
from apps.ingest import polling

from . import selectors
from .models import ChannelAccount


def _require_supervisor(request):
    if not user_has_role(request.user, Role.SUPERVISOR, Role.ADMIN):
        raise PermissionDenied("Only supervisors and admins can see connector health.")


@login_required
def connector_health(request):
    _require_supervisor(request)
    rows = selectors.account_health_list()
    return render(request, "connectors/health.html", {
        "rows": rows, "troubled": sum(r.state in ("failing", "rate_limited", "stale") or r.falling_behind for r in rows),
        "behind_after": selectors.duration_short(selectors.falling_behind_seconds()),
    })


@login_required
@require_POST
def connector_poll_now(request, pk):
    _require_supervisor(request)
    account = get_object_or_404(ChannelAccount.objects.defer("credentials", "hook_secrets"), pk=pk, is_active=True)
    polling.account_poll_retry(account=account, actor=request.user)
    flash.success(request, f"{account} will be polled now.")
    return redirect("connectors:health")
