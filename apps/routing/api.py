"""REST API: /api/v1/rules/, /api/v1/sla-policies/, /api/v1/business-hours/.

Agents and supervisors read; supervisors and admins change (business hours: the
team's leads and admins). Writes go through services (audited); errors are
JSON {"detail": ...}."""
from django.core.exceptions import PermissionDenied
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.accounts.permissions import IsSupervisorOrReadOnly, can_manage_team
from apps.core.errors import DomainError

from . import configuration, selectors
from .models import BusinessHours, RoutingRule, SlaPolicy
from .serializers import BusinessHoursSerializer, ReorderSerializer, RoutingRuleSerializer, SlaPolicySerializer


class RoutingRuleViewSet(viewsets.ModelViewSet):
    """Routing rules, applied in `position` order at the start of each conversation cycle."""

    serializer_class = RoutingRuleSerializer
    permission_classes = [IsSupervisorOrReadOnly]
    pagination_class = None
    queryset = RoutingRule.objects.prefetch_related("channel_accounts").order_by("position", "id")

    def get_queryset(self):
        # Everyone working reads the rules (global configuration); a supervisor changes only
        # the rules that name nothing outside the teams they lead (others: 404).
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return self.queryset
        return self.queryset.filter(pk__in=selectors.rules_managed_by(self.request.user).values("pk"))

    def perform_create(self, serializer):
        serializer.instance = configuration.rule_create(actor=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = configuration.rule_update(rule=serializer.instance, actor=self.request.user,
                                                   **serializer.validated_data)

    def perform_destroy(self, instance):
        configuration.rule_delete(rule=instance, actor=self.request.user)

    @extend_schema(request=ReorderSerializer, responses=RoutingRuleSerializer(many=True))
    @action(detail=False, methods=["post"])
    def reorder(self, request):
        data = ReorderSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        managed = set(selectors.rules_managed_by(request.user).filter(pk__in=data.validated_data["order"])
                      .values_list("pk", flat=True))
        if set(data.validated_data["order"]) - managed:  # another team's rule is not one to move: unknown here
            raise DomainError("Unknown rule id in the new order (or a rule of a team you do not lead).")
        configuration.rules_reorder(rule_ids=data.validated_data["order"], actor=request.user)
        return Response(RoutingRuleSerializer(self.get_queryset(), many=True).data)


class SlaPolicyViewSet(viewsets.ModelViewSet):
    """SLA targets per queue and priority bucket (the most specific active policy applies)."""

    serializer_class = SlaPolicySerializer
    permission_classes = [IsSupervisorOrReadOnly]
    pagination_class = None
    queryset = SlaPolicy.objects.none()

    def get_queryset(self):
        # Global policies and those of the user's teams' queues; another team's queue's policy is a 404.
        return selectors.sla_policies_visible_to(
            self.request.user, for_write=self.request.method not in ("GET", "HEAD", "OPTIONS"))

    def perform_create(self, serializer):
        serializer.instance = configuration.sla_policy_create(actor=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = configuration.sla_policy_update(policy=serializer.instance, actor=self.request.user,
                                                         **serializer.validated_data)

    def perform_destroy(self, instance):
        configuration.sla_policy_delete(policy=instance, actor=self.request.user)


class BusinessHoursViewSet(viewsets.ModelViewSet):
    """A team's working week, time zone and holidays (used by SLA policies and rules)."""

    serializer_class = BusinessHoursSerializer
    permission_classes = [IsSupervisorOrReadOnly]
    pagination_class = None
    queryset = BusinessHours.objects.select_related("team").prefetch_related("holidays").order_by("team__name")
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def _check_team(self, team):
        if not can_manage_team(self.request.user, team):
            raise PermissionDenied("Only the team's leads and admins can change its business hours.")

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        self._check_team(data["team"])
        hours = configuration.business_hours_set(team=data["team"], actor=request.user, time_zone=data.get("time_zone"),
                                            schedule=data.get("schedule"), holidays=data.get("holidays"))
        return Response(self.get_serializer(self.get_queryset().get(pk=hours.pk)).data,
                        status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        instance = self.get_object()
        self._check_team(instance.team)
        serializer = self.get_serializer(instance, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "team" in data and data["team"] != instance.team:
            return Response({"detail": "Business hours cannot move to another team."},
                            status=status.HTTP_400_BAD_REQUEST)
        configuration.business_hours_set(team=instance.team, actor=request.user, time_zone=data.get("time_zone"),
                                    schedule=data.get("schedule"), holidays=data.get("holidays"))
        return Response(self.get_serializer(self.get_queryset().get(pk=instance.pk)).data)

    def perform_destroy(self, instance):
        self._check_team(instance.team)
        configuration.business_hours_delete(hours=instance, actor=self.request.user)
