"""Role checks shared by pages and APIs."""
from rest_framework.permissions import SAFE_METHODS, BasePermission

from .models import Role

WORKING_ROLES = {Role.AGENT, Role.SUPERVISOR, Role.ADMIN}


def user_has_role(user, *roles) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return user.role in roles


class CanWorkConversations(BasePermission):
    """Agents, supervisors and admins; marketing reads reports only."""

    message = "Your role cannot open conversations."

    def has_permission(self, request, view):
        return user_has_role(request.user, *WORKING_ROLES)


class IsSupervisorOrReadOnly(BasePermission):
    message = "Only supervisors and admins can change this."

    def has_permission(self, request, view):
        if not user_has_role(request.user, *WORKING_ROLES):
            return False
        return request.method in SAFE_METHODS or user_has_role(request.user, Role.SUPERVISOR, Role.ADMIN)


class IsAdmin(BasePermission):
    message = "Only admins can do this."

    def has_permission(self, request, view):
        return user_has_role(request.user, Role.ADMIN)


SUPERVISOR_ROLES = {Role.SUPERVISOR, Role.ADMIN}


class IsSupervisor(BasePermission):
    """Supervisors and admins, any method."""

    message = "Only supervisors and admins can do this."

    def has_permission(self, request, view):
        return user_has_role(request.user, *SUPERVISOR_ROLES)


class IsWorkingRole(BasePermission):
    """Agents, supervisors and admins (not marketing), any method; object checks are the view's."""

    message = "Your role cannot do this."

    def has_permission(self, request, view):
        return user_has_role(request.user, *WORKING_ROLES)


def can_manage_team(user, team) -> bool:
    """Admins manage every team; supervisors the teams they lead."""
    if user_has_role(user, Role.ADMIN):
        return True
    return user_has_role(user, Role.SUPERVISOR) and team is not None and team.leads.filter(pk=user.pk).exists()


def can_edit_canned(user, team) -> bool:
    """Global canned responses (team None): admins. A team's: its leads and admins."""
    if team is None:
        return user_has_role(user, Role.ADMIN)
    return can_manage_team(user, team)


def require_role(*roles):
    """Page decorator: login required (302 to login), then the role (403 otherwise)."""
    from functools import wraps

    from django.contrib.auth.decorators import login_required
    from django.core.exceptions import PermissionDenied

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not user_has_role(request.user, *roles):
                raise PermissionDenied("Your role cannot open this page.")
            return view(request, *args, **kwargs)

        return login_required(wrapped)

    return decorator
