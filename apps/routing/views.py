"""Supervisor pages: routing rules (list, order, edit), SLA policies, business hours.

Supervisors and admins only (agents read rules through the API). Each view parses,
calls one service, renders; a refused change shows its reason on the form."""
from django.contrib import messages as flash
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.models import Team
from apps.accounts.permissions import SUPERVISOR_ROLES, can_manage_team, require_role
from apps.core.errors import DomainError

from . import configuration, selectors
from .forms import BusinessHoursForm, RuleForm, SlaPolicyForm
from .models import BusinessHours, RoutingRule
from .rules import regex_problem

CONDITION_FIELDS = ["channels", "channel_accounts", "keywords", "regex", "languages", "sentiments", "min_followers",
                    "max_followers", "customer_tags", "customer_tiers", "hours", "hours_team", "visibility"]
ACTION_FIELDS = ["set_queue", "set_priority_bucket", "priority_boost", "add_tags", "assign_agent", "assign_team",
                 "auto_reply", "disposition", "stop"]


@require_role(*SUPERVISOR_ROLES)
def rule_list(request):
    rules = list(RoutingRule.objects.select_related("set_queue", "assign_agent", "assign_team", "auto_reply")
                 .prefetch_related("channel_accounts").order_by("position", "id"))
    for rule in rules:  # an expression saved before RE2 that it refuses: routing skips the rule
        rule.regex_problem = regex_problem(rule.regex)
    return render(request, "routing/rules.html", {"rules": rules})


@require_role(*SUPERVISOR_ROLES)
def rule_edit(request, pk=None):
    # A rule that routes to another team's queue, team or agent is theirs: 404 (docs/roles.md, Ownership).
    rule = get_object_or_404(selectors.rules_managed_by(request.user), pk=pk) if pk else None
    if request.method == "POST":
        form = RuleForm(request.POST)
        if form.is_valid():
            values = form.values()
            accounts = values.pop("channel_accounts")
            try:
                if rule is None:
                    rule = configuration.rule_create(actor=request.user, channel_accounts=accounts, **values)
                    flash.success(request, f"Rule “{rule.name}” created; it runs last.")
                else:
                    rule = configuration.rule_update(rule=rule, actor=request.user, channel_accounts=accounts, **values)
                    flash.success(request, f"Rule “{rule.name}” saved.")
                return redirect("routing:rules")
            except DomainError as exc:
                form.add_error(None, exc.detail)
    else:
        form = RuleForm(initial=RuleForm.initial_for(rule) if rule else None)
    groups = [
        ("When (all must hold; empty means any)", [form[n] for n in CONDITION_FIELDS]),
        ("Then", [form[n] for n in ACTION_FIELDS]),
    ]
    return render(request, "routing/rule_edit.html", {"form": form, "rule": rule, "groups": groups})


@require_role(*SUPERVISOR_ROLES)
@require_POST
def rule_delete(request, pk):
    rule = get_object_or_404(selectors.rules_managed_by(request.user), pk=pk)
    configuration.rule_delete(rule=rule, actor=request.user)
    flash.success(request, f"Rule “{rule.name}” deleted.")
    return redirect("routing:rules")


@require_role(*SUPERVISOR_ROLES)
@require_POST
def rule_move(request, pk, direction):
    get_object_or_404(selectors.rules_managed_by(request.user), pk=pk)
    order = list(RoutingRule.objects.order_by("position", "id").values_list("pk", flat=True))
    if pk in order:
        i = order.index(pk)
        j = i - 1 if direction == "up" else i + 1
        if 0 <= j < len(order):
            order[i], order[j] = order[j], order[i]
            configuration.rules_reorder(rule_ids=order, actor=request.user)
    return redirect("routing:rules")


@require_role(*SUPERVISOR_ROLES)
def sla_list(request, pk=None):
    policy = get_object_or_404(selectors.sla_policies_visible_to(request.user, for_write=True), pk=pk) if pk else None
    form = SlaPolicyForm(request.POST or None, instance=policy)
    if request.method == "POST" and form.is_valid():
        values = {name: form.cleaned_data[name] for name in form.Meta.fields}
        try:
            if policy is None:
                configuration.sla_policy_create(actor=request.user, **values)
            else:
                configuration.sla_policy_update(policy=policy, actor=request.user, **values)
            flash.success(request, f"SLA policy “{values['name']}” saved.")
            return redirect("routing:sla")
        except DomainError as exc:
            form.add_error(None, exc.detail)
    policies = selectors.sla_policies_visible_to(request.user)
    return render(request, "routing/sla.html", {"policies": policies, "form": form, "policy": policy})


@require_role(*SUPERVISOR_ROLES)
@require_POST
def sla_delete(request, pk):
    policy = get_object_or_404(selectors.sla_policies_visible_to(request.user, for_write=True), pk=pk)
    configuration.sla_policy_delete(policy=policy, actor=request.user)
    flash.success(request, f"SLA policy “{policy.name}” deleted.")
    return redirect("routing:sla")


@require_role(*SUPERVISOR_ROLES)
def hours_list(request):
    teams = Team.objects.order_by("name")
    hours = {h.team_id: h for h in BusinessHours.objects.prefetch_related("holidays")}
    rows = [{"team": t, "hours": hours.get(t.pk), "can_edit": can_manage_team(request.user, t)} for t in teams]
    return render(request, "routing/hours.html", {"rows": rows})


@require_role(*SUPERVISOR_ROLES)
def hours_edit(request, team_id):
    team = get_object_or_404(Team, pk=team_id)
    if not can_manage_team(request.user, team):
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied("Only the team's leads and admins can change its business hours.")
    hours = BusinessHours.objects.filter(team=team).prefetch_related("holidays").first()
    form = BusinessHoursForm(request.POST or None, initial=BusinessHoursForm.initial_for(hours))
    if request.method == "POST" and form.is_valid():
        try:
            configuration.business_hours_set(team=team, actor=request.user, time_zone=form.cleaned_data["time_zone"],
                                        schedule=form.cleaned_data["schedule"],
                                        holidays=form.cleaned_data["holiday_list"])
            flash.success(request, f"Business hours of {team.name} saved.")
            return redirect("routing:hours")
        except DomainError as exc:
            form.add_error(None, exc.detail)
    return render(request, "routing/hours_edit.html", {"form": form, "team": team})
