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
