"""REST API for accounts and supervisor tools under /api/v1/: users and presence,
teams, API tokens, bulk reassignment, the dashboard and the audit log.
Errors are JSON {"detail": ...}; every endpoint checks the role."""
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import DomainError
from apps.inbox import audit_log
from apps.inbox import reassignment as inbox_reassignment
from apps.inbox.models import Queue
from apps.inbox.reassignment import agent_workload_move, conversations_bulk_assign
from apps.inbox.selectors import conversation_filters_check
from apps.routing import supervision

from . import selectors, services
from .models import ApiToken, Team, User
from .permissions import IsSupervisor, IsWorkingRole, can_manage_team
from .serializers import (ApiTokenCreatedSerializer, ApiTokenSerializer, AuditRowSerializer, BulkAssignInputSerializer,
                          BulkResultSerializer, CapacityInputSerializer, PresenceInputSerializer,
                          TeamMembersInputSerializer, TeamSerializer, UserSerializer, WorkloadInputSerializer)
from .signals import client_ip
from .views import audit_csv_response


def _target(data: dict | None):
    """{"agent": id} | {"team": id} | {"queue": id} -> the object; {} -> None."""
    data = {k: v for k, v in (data or {}).items() if v is not None}
    if len(data) > 1:
        raise DomainError("Pick one target: an agent, a team or a queue.")
    if not data:
        return None
    kind, pk = next(iter(data.items()))
    model = {"agent": User, "team": Team, "queue": Queue}[kind]
    return get_object_or_404(model, pk=pk)


class UserViewSet(viewsets.ReadOnlyModelViewSet):
    """Colleagues (working roles), their presence and capacity; `me` for yourself."""

    serializer_class = UserSerializer
    permission_classes = [IsWorkingRole]
    pagination_class = None
    queryset = User.objects.none()

    def get_queryset(self):
        return User.objects.filter(is_active=True).prefetch_related("teams").order_by("username")

    def get_permissions(self):
        if self.action in ("me", "presence"):
            return [IsAuthenticated()]
        if self.action in ("capacity", "workload"):
            return [IsSupervisor()]
        return super().get_permissions()

    def list(self, request, *args, **kwargs):
        users = supervision.users_with_load(self.filter_queryset(self.get_queryset()))
        return Response(UserSerializer(users, many=True).data)

    def get_object(self):
        return supervision.users_with_load([super().get_object()])[0]

    def _managed(self, pk) -> User:
        agent = selectors.agents_managed_by(self.request.user).filter(pk=pk).first()
        if agent is None:  # as on the page: someone of another team is a 404 (docs/roles.md, Ownership)
            raise NotFound("No agent with that id in your teams.")
        return agent

    @action(detail=False, methods=["get"])
    def me(self, request):
        return Response(UserSerializer(supervision.users_with_load([request.user])[0]).data)

    @extend_schema(request=PresenceInputSerializer, responses=UserSerializer)
    @action(detail=False, methods=["post"], url_path="me/presence")
    def presence(self, request):
        data = PresenceInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_presence_set(user=request.user, presence=data.validated_data["presence"], manual=True)
        return Response(UserSerializer(supervision.users_with_load([user])[0]).data)

    @extend_schema(request=CapacityInputSerializer, responses=UserSerializer)
    @action(detail=True, methods=["post"])
    def capacity(self, request, pk=None):
        agent = self._managed(pk)
        data = CapacityInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.user_capacity_set(user=agent, actor=request.user, **data.validated_data)
        return Response(UserSerializer(supervision.users_with_load([agent])[0]).data)

    @extend_schema(request=WorkloadInputSerializer, responses=BulkResultSerializer)
    @action(detail=True, methods=["post"])
    def workload(self, request, pk=None):
        """Moves all the agent's open conversations (off shift): to an agent, team or
        queue, or with no `to` back to their queues unassigned."""
        agent = self._managed(pk)
        data = WorkloadInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = agent_workload_move(agent=agent, to=_target(data.validated_data.get("to")), actor=request.user,
                                     reason=data.validated_data["reason"],
                                     go_offline=data.validated_data["go_offline"])
        return Response(result)


class TeamViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = TeamSerializer
    permission_classes = [IsWorkingRole]
    pagination_class = None
    queryset = Team.objects.prefetch_related("members", "leads").order_by("name")

    def create(self, request, *args, **kwargs):
        if not request.user.is_admin_role:
            raise PermissionDenied("Only admins create teams.")
        data = TeamSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        team = services.team_create(actor=request.user, **data.validated_data)
        return Response(TeamSerializer(team).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TeamMembersInputSerializer, responses=TeamSerializer)
    @action(detail=True, methods=["post"])
    def members(self, request, pk=None):
        """Replaces the members (team leads and admins); leads only admins may change."""
        team = self.get_object()
        if not can_manage_team(request.user, team):
            raise PermissionDenied("Only the team's leads and admins can change it.")
        data = TeamMembersInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        users = User.objects.filter(is_active=True)
        leads = data.validated_data.get("leads")
        if leads is not None and not request.user.is_admin_role:
            raise PermissionDenied("Only admins change who leads a team.")
        members = list(users.filter(pk__in=data.validated_data["members"]))
        leads = list(users.filter(pk__in=leads)) if leads is not None else None
        # An unknown id is a mistake, not "nobody": it emptied the team (a 400 now, nothing changed).
        unknown = (set(data.validated_data["members"]) | set(data.validated_data.get("leads") or [])) - {
            u.pk for u in members + (leads or [])}
        if unknown:
            raise DomainError(f"No active user with id {', '.join(str(i) for i in sorted(unknown))}.")
        services.team_members_set(team=team, members=members, leads=leads, actor=request.user)
        return Response(TeamSerializer(Team.objects.get(pk=team.pk)).data)


class ApiTokenViewSet(mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet):
    """Your own API tokens. POST creates one and answers its key once; DELETE revokes."""

    serializer_class = ApiTokenSerializer
    permission_classes = [IsAuthenticated]
    pagination_class = None
    queryset = ApiToken.objects.none()

    def get_queryset(self):
        return selectors.api_tokens_for(self.request.user)

    @extend_schema(responses={201: ApiTokenCreatedSerializer})
    def create(self, request, *args, **kwargs):
        data = ApiTokenSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, key = services.api_token_create(user=request.user, name=data.validated_data["name"],
                                               ip_address=client_ip(request))
        token.key = key
        return Response(ApiTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        services.api_token_revoke(token=self.get_object(), actor=request.user, ip_address=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class BulkAssignView(APIView):
    """POST /api/v1/conversations/bulk-assign/: {"ids": [...]} or {"filter": {...}} (the
    conversation list's filters: all matching), "to": {"agent"|"team"|"queue": id}, "reason"."""

    permission_classes = [IsSupervisor]

    @extend_schema(request=BulkAssignInputSerializer, responses=BulkResultSerializer)
    def post(self, request):
        data = BulkAssignInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        target = _target(data.validated_data["to"])
        if target is None:
            raise DomainError("Pick one target: an agent, a team or a queue.")
        kwargs = {"to_agent": target if isinstance(target, User) else None,
                  "to_team": target if isinstance(target, Team) else None,
                  "to_queue": target if isinstance(target, Queue) else None}
        if "ids" in data.validated_data:
            kwargs["conversations"] = data.validated_data["ids"]
        else:
            # An unknown key or value used to match everything the user sees: a 400 with the reason.
            conversation_filters_check(data.validated_data["filter"])
            kwargs["filters"] = data.validated_data["filter"]
        result = conversations_bulk_assign(actor=request.user, reason=data.validated_data["reason"],
                                           background_over=inbox_reassignment.BULK_SYNC_MAX, **kwargs)
        # Large moves run in the background: 202 with "queued"; the audit log shows each move.
        return Response(result, status=status.HTTP_202_ACCEPTED if result.get("queued") else status.HTTP_200_OK)


class DashboardView(APIView):
    """GET /api/v1/supervisor/dashboard/: what the supervisor dashboard shows, as JSON."""

    permission_classes = [IsSupervisor]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        snap = supervision.dashboard_snapshot(user=request.user)
        return Response({
            "at": snap["now"], "totals": snap["totals"], "agents_online": snap["agents_online"],
            "at_risk_minutes": snap["at_risk_minutes"],
            "queues": [{"id": q.queue_id, "name": q.name, "team": q.team, "open": q.open, "waiting": q.waiting,
                        "unassigned": q.unassigned,
                        "oldest_wait_seconds": q.oldest_wait_seconds, "sla_at_risk": q.at_risk,
                        "sla_breached": q.breached} for q in snap["queues"]],
            "agents": [{"id": a.pk, "username": a.username, "display_name": a.display_name,
                        "presence": a.presence, "load": a.load, "capacity": a.capacity,
                        "last_seen_at": a.last_seen_at} for a in snap["agents"]],
        })


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):  # errors only: rows stream
        return str(data.get("detail", "") if isinstance(data, dict) else data).encode()


AUDIT_PARAMS = [
    OpenApiParameter(name, OpenApiTypes.STR, description=desc) for name, desc in [
        ("action", "kind or action, or its prefix: assigned, status_changed, auth, token, rule..."),
        ("actor", "username, or 'system'"), ("source", "conversation | system"),
        ("conversation", "conversation id"), ("since", "ISO date or datetime"), ("until", "ISO date or datetime"),
        ("before", "cursor: the `next` link gives it"), ("format", "json (default) or csv (every matching row)"),
    ]
]


class AuditLogView(APIView):
    """GET /api/v1/audit/: conversation events (assignments, moves, status changes...)
    and system entries (logins, tokens, rule and SLA edits), newest first."""

    permission_classes = [IsSupervisor]
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, CSVRenderer]
    page_size = 100

    # The response is a page, {next, results}: the schema said a bare array.
    @extend_schema(parameters=AUDIT_PARAMS, responses={200: inline_serializer("AuditLogPage", {
        "next": serializers.URLField(allow_null=True, help_text="the next (older) page, or null"),
        "results": AuditRowSerializer(many=True)})})
    def get(self, request):
        filters = {k: v for k, v in request.query_params.items() if v and k != "format"}
        if getattr(request.accepted_renderer, "format", "") == "csv":
            return audit_csv_response(audit_log.audit_log_iter(user=request.user, filters=filters))
        rows = audit_log.audit_log(user=request.user, filters=filters, limit=self.page_size)
        next_url = None
        if len(rows) == self.page_size:
            query = request.query_params.copy()
            query["before"] = rows[-1].at.isoformat()
            next_url = request.build_absolute_uri(request.path + "?" + query.urlencode())
        return Response({"next": next_url, "results": AuditRowSerializer(rows, many=True).data})
