"""Reads of accounts: the teams and agents a user manages, and a user's API tokens. The
supervisor tools that read conversations live above (routing/supervision.py: the dashboard
and agents' loads; inbox/audit_log.py: the audit log)."""
from __future__ import annotations

from django.db.models import QuerySet

from .models import ApiToken, Role, Team, User
from .permissions import user_has_role

# --- scope --------------------------------------------------------------------------------------------

def teams_managed_by(user) -> QuerySet[Team]:
    """Admins: every team. Supervisors: the teams they lead. Others: none."""
    if user_has_role(user, Role.ADMIN):
        return Team.objects.all()
    if user_has_role(user, Role.SUPERVISOR):
        return Team.objects.filter(leads=user)
    return Team.objects.none()


def agents_managed_by(user) -> QuerySet[User]:
    """Working users in the teams the user manages (admins: all working users)."""
    qs = User.objects.filter(is_active=True, role__in=[Role.AGENT, Role.SUPERVISOR, Role.ADMIN])
    if not user_has_role(user, Role.ADMIN):
        qs = qs.filter(teams__in=teams_managed_by(user).values("pk")).distinct()
    return qs


# --- tokens -----------------------------------------------------------------------------------------

def api_tokens_for(user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("revoked_at", "-created_at")
