"""Pages: the user's own account (presence, API tokens) and the supervisor tools
(dashboard, agents, teams, reassignment, canned responses, audit log).

Every view checks the role first (require_role: anonymous -> login, wrong role
-> 403), parses, calls one service or selector, renders."""
from __future__ import annotations

import csv
import json
from urllib.parse import urlencode

from django.contrib import messages as flash
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from apps.core.errors import DomainError
from apps.inbox import audit_log
from apps.inbox import selectors as inbox_selectors
from apps.inbox import reassignment as inbox_reassignment
from apps.inbox.canned import canned_response_delete, canned_response_save
from apps.inbox.filters import valid_list_filters
from apps.inbox.models import Queue, Status
from apps.inbox.reassignment import agent_workload_move, conversations_bulk_assign, conversations_bulk_preview
from apps.inbox.selectors import conversation_list_for_user
from apps.routing import supervision

from . import selectors, services
from .middleware import presence_passive
from .models import ApiToken, Presence, Role, Team, User
from .permissions import SUPERVISOR_ROLES, can_edit_canned, can_manage_team, require_role
from .signals import client_ip

ALL_ROLES = tuple(Role.values)
BULK_FILTER_KEYS = ("status", "queue", "assignee", "priority", "channel", "tag", "q", "view")


# --- where each role starts -----------------------------------------------------------------------------

# The page each role's work is on (docs/roles.md): "/" and the login go there, so nobody lands on a
# page their role cannot open.
LANDING_PAGES = {Role.AGENT: "inbox:list", Role.SUPERVISOR: "supervisor:dashboard",
                 Role.MARKETING: "reports:index", Role.ADMIN: "inbox:list"}


def landing(request):
    if not request.user.is_authenticated:
        return redirect("login")
    role = Role.ADMIN if request.user.is_superuser else request.user.role
    return redirect(LANDING_PAGES.get(role, "accounts:profile"))


# --- the user's own account -----------------------------------------------------------------------------

@require_role(*ALL_ROLES)
def profile(request):
    return render(request, "accounts/profile.html", {
        "presences": Presence.choices, "teams": request.user.teams.all(),
        "led_teams": request.user.led_teams.all(),
    })


@require_role(*ALL_ROLES)
@require_POST
def presence_set(request):
    try:
        services.user_presence_set(user=request.user, presence=request.POST.get("presence", ""), manual=True)
        flash.success(request, f"You are {request.user.get_presence_display().lower()}.")
    except DomainError as exc:
        flash.error(request, exc.detail)
    # A URL, never a view name: redirect("abc") would look "abc" up as one (NoReverseMatch, a 500).
    return HttpResponseRedirect(request.POST["next"]) if _safe_next(request) else redirect("accounts:profile")


def _safe_next(request) -> bool:
    from django.utils.http import url_has_allowed_host_and_scheme

    nxt = request.POST.get("next", "")
    return bool(nxt) and url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()})


@require_role(*ALL_ROLES)
def tokens(request):
    new_key = None
    if request.method == "POST":
        try:
            token, new_key = services.api_token_create(user=request.user, name=request.POST.get("name", ""),
                                                       ip_address=client_ip(request))
            flash.success(request, f"Token “{token.name}” created. Copy it now: it is not shown again.")
        except DomainError as exc:
            flash.error(request, exc.detail)
    return render(request, "accounts/tokens.html", {"tokens": selectors.api_tokens_for(request.user),
                                                    "new_key": new_key})


@require_role(*ALL_ROLES)
@require_POST
def token_revoke(request, pk):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)  # only your own: others' are a 404
    services.api_token_revoke(token=token, actor=request.user, ip_address=client_ip(request))
    flash.success(request, f"Token “{token.name}” revoked.")
    return redirect("accounts:tokens")


# --- supervisor: dashboard ------------------------------------------------------------------------------

@require_role(*SUPERVISOR_ROLES)
def dashboard(request):
    return render(request, "supervisor/dashboard.html", supervision.dashboard_snapshot(user=request.user))


@presence_passive
@require_role(*SUPERVISOR_ROLES)
def dashboard_live(request):
    """The live part of the dashboard: htmx swaps it in every few seconds."""
    return render(request, "supervisor/_dashboard_live.html", supervision.dashboard_snapshot(user=request.user))


# --- supervisor: agents ------------------------------------------------------------------------------

@require_role(*SUPERVISOR_ROLES)
def agents(request):
    return render(request, "supervisor/agents.html", {
        "agents": supervision.agents_with_load(user=request.user),
        "targets": selectors.agents_managed_by(request.user).order_by("username"),
        "teams": Team.objects.order_by("name"),
        "queues": _all_queues(),
    })


def _all_queues():
    return Queue.objects.select_related("team").order_by("name")


def _managed_agent_or_404(request, pk) -> User:
    agent = selectors.agents_managed_by(request.user).filter(pk=pk).first()
    if agent is None:
        raise Http404("No agent with that id in your teams.")
    return agent


@require_role(*SUPERVISOR_ROLES)
@require_POST
def agent_capacity(request, pk):
    agent = _managed_agent_or_404(request, pk)
    try:
        capacity = int(request.POST.get("capacity", ""))
        per_channel = {}
        for part in filter(None, (p.strip() for p in request.POST.get("channel_capacity", "").split(","))):
            channel, _, value = part.partition("=")
            per_channel[channel.strip()] = value.strip()
        services.user_capacity_set(user=agent, capacity=capacity, channel_capacity=per_channel, actor=request.user)
        flash.success(request, ngettext("%(name)s now takes up to %(n)d open conversation.",
                                        "%(name)s now takes up to %(n)d open conversations.", capacity)
                      % {"name": agent.display_name, "n": capacity})
    except ValueError:
        flash.error(request, "Capacity must be a whole number.")
    except DomainError as exc:
        flash.error(request, exc.detail)
    return redirect("supervisor:agents")


@require_role(*SUPERVISOR_ROLES)
@require_POST
def agent_workload(request, pk):
    agent = _managed_agent_or_404(request, pk)
    try:
        target = _parse_target(request.POST.get("to", ""))
        if request.POST.get("confirmed") != "1":
            # Moving someone's whole workload is confirmed first, on a page of its own.
            label = ("their queues, unassigned" if target is None else f"agent {target.display_name}"
                     if isinstance(target, User) else f"team {target.name}" if isinstance(target, Team)
                     else f"queue {target.name}")
            return render(request, "supervisor/workload_confirm.html", {
                **inbox_reassignment.agent_workload_preview(agent=agent, actor=request.user), "agent": agent,
                "target_label": label, "reason": request.POST.get("reason", ""),
                "go_offline": request.POST.get("go_offline") == "on",
                "fields": [(k, v) for k, values in request.POST.lists() for v in values
                           if k not in ("csrfmiddlewaretoken", "confirmed")]})
        result = agent_workload_move(agent=agent, to=target, actor=request.user,
                                     reason=request.POST.get("reason", ""),
                                     go_offline=request.POST.get("go_offline") == "on")
        outside = result["not_visible"]
        flash.success(request, f"Moved {result['moved']} of {agent.display_name}'s open conversations"
                               + (ngettext("; %d is outside your teams.", "; %d are outside your teams.", outside)
                                  % outside if outside else "."))
    except DomainError as exc:
        flash.error(request, exc.detail)
    return redirect("supervisor:agents")


def _parse_target(value: str):
    """'agent:12', 'team:3', 'queue:5', or 'queue' alone = back to their queues (None)."""
    kind, _, pk = (value or "").partition(":")
    if kind in ("", "none", "unassign"):
        return None
    model = {"agent": User, "team": Team, "queue": Queue}.get(kind)
    if model is None or not pk.isdecimal():
        raise DomainError("Pick where the conversations go.")
    obj = model.objects.filter(pk=int(pk)).first()
    if obj is None:
        raise DomainError("That target does not exist any more.")
    return obj


# --- supervisor: teams ----------------------------------------------------------------------------------

@require_role(*SUPERVISOR_ROLES)
def teams(request):
    if request.method == "POST":
        if not request.user.is_admin_role:
            raise PermissionDenied("Only admins create teams.")
        try:
            team = services.team_create(name=request.POST.get("name", ""),
                                        time_zone=request.POST.get("time_zone", "UTC") or "UTC", actor=request.user)
            flash.success(request, f"Team {team.name} created.")
            return redirect("supervisor:team", pk=team.pk)
        except DomainError as exc:
            flash.error(request, exc.detail)
    all_teams = Team.objects.prefetch_related("members", "leads").order_by("name")
    return render(request, "supervisor/teams.html", {
        "teams": all_teams, "managed_ids": set(selectors.teams_managed_by(request.user).values_list("pk", flat=True)),
    })


@require_role(*SUPERVISOR_ROLES)
def team_edit(request, pk):
    team = get_object_or_404(Team, pk=pk)
    if not can_manage_team(request.user, team):
        raise PermissionDenied("Only the team's leads and admins can change it.")
    if request.method == "POST":
        users = User.objects.filter(is_active=True)
        members = list(users.filter(pk__in=[v for v in request.POST.getlist("members") if v.isdecimal()]))
        leads = None
        if request.user.is_admin_role:  # supervisors change members; who leads is an admin's call
            leads = list(users.filter(pk__in=[v for v in request.POST.getlist("leads") if v.isdecimal()]))
        try:
            services.team_members_set(team=team, members=members, leads=leads, actor=request.user)
            flash.success(request, f"Team {team.name} saved.")
            return redirect("supervisor:team", pk=team.pk)
        except DomainError as exc:
            flash.error(request, exc.detail)
    return render(request, "supervisor/team_edit.html", {
        "team": team, "users": User.objects.filter(is_active=True).exclude(role=Role.MARKETING).order_by("username"),
        "member_ids": set(team.members.values_list("pk", flat=True)),
        "lead_ids": set(team.leads.values_list("pk", flat=True)),
    })


# --- supervisor: reassignment -----------------------------------------------------------------------------

def _bulk_filters(source) -> dict:
    # A value the list cannot take (a NUL in q, an unknown status) is dropped, as on the inbox page.
    filters = valid_list_filters({k: source.get(k) for k in BULK_FILTER_KEYS if source.get(k)})
    if "queue" in filters and not (str(filters["queue"]).isdigit() or filters["queue"] == "none"):
        filters.pop("queue")
    if "assignee" in filters and not (str(filters["assignee"]).isdigit() or filters["assignee"] in ("none", "me")):
        filters.pop("assignee")
    return filters


@require_role(*SUPERVISOR_ROLES)
def reassign(request):
    if request.method == "POST":
        filters = _bulk_filters(request.POST)
        try:
            target = _parse_target(request.POST.get("to", ""))
            if target is None:
                raise DomainError("Pick where the conversations go.")
            kwargs = {"to_agent": target if isinstance(target, User) else None,
                      "to_team": target if isinstance(target, Team) else None,
                      "to_queue": None if isinstance(target, (User, Team)) else target}
            if request.POST.get("scope") == "all":
                chosen = {"filters": filters}
            else:
                ids = [int(v) for v in request.POST.getlist("ids") if v.isdecimal()]
                if not ids:
                    raise DomainError("Select at least one conversation, or choose all matching the filter.")
                chosen = {"conversations": ids}
            if request.POST.get("confirmed") != "1":
                # A bulk move is confirmed first, on a page of its own (with or without JavaScript).
                preview = conversations_bulk_preview(actor=request.user, **chosen, **kwargs)
                label = (f"agent {target.display_name}" if isinstance(target, User)
                         else f"team {target.name}" if isinstance(target, Team) else f"queue {target.name}")
                return render(request, "supervisor/reassign_confirm.html", {
                    **preview, "stay": preview["matched"] - preview["change"], "target_label": label,
                    "reason": request.POST.get("reason", ""),
                    "querystring": request.POST.get("querystring", ""),
                    "fields": [(k, v) for k, values in request.POST.lists() for v in values
                               if k not in ("csrfmiddlewaretoken", "confirmed")]})
            kwargs.update(actor=request.user, reason=request.POST.get("reason", ""),
                          background_over=inbox_reassignment.BULK_SYNC_MAX)
            result = conversations_bulk_assign(**chosen, **kwargs)
            if result.get("queued"):
                flash.success(request, ngettext("Moving %d conversation in the background; ",
                                                "Moving %d conversations in the background; ", result["queued"])
                              % result["queued"] + "the audit log shows each move.")
            else:
                flash.success(request, ngettext("Moved %d conversation; ", "Moved %d conversations; ",
                                                result["moved"]) % result["moved"]
                              + ngettext("%d was there already.", "%d were there already.", result["unchanged"])
                              % result["unchanged"])
        except DomainError as exc:
            flash.error(request, exc.detail)
        return redirect(reverse("supervisor:reassign") + "?" + request.POST.get("querystring", ""))
    filters = _bulk_filters(request.GET)
    filters.setdefault("status", "new,open,pending")
    unrouted = filters.get("queue") == "none"
    qs = conversation_list_for_user(user=request.user, filters={k: v for k, v in filters.items()
                                                                if not (unrouted and k == "queue")})
    if unrouted:
        qs = qs.filter(queue__isnull=True)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    return render(request, "supervisor/reassign.html", {
        "page": page, "filters": filters, "count": page.paginator.count, "statuses": Status.choices,
        "querystring": request.GET.urlencode(),
        "agents": selectors.agents_managed_by(request.user).order_by("username"),
        "teams": Team.objects.order_by("name"), "queues": _all_queues(),
    })


# --- supervisor: canned responses --------------------------------------------------------------------------

@require_role(*SUPERVISOR_ROLES)
def canned_list(request):
    if request.method == "POST":
        team = _team_from(request.POST.get("team"))
        try:
            canned_response_save(actor=request.user, shortcut=request.POST.get("shortcut", ""),
                                          title=request.POST.get("title", ""), text=request.POST.get("text", ""),
                                          team=team)
            flash.success(request, "Canned response saved.")
            return redirect("supervisor:canned")
        except DomainError as exc:
            flash.error(request, exc.detail)
    items = list(inbox_selectors.canned_responses_for(request.user))
    for item in items:
        item.editable = can_edit_canned(request.user, item.team)
    return render(request, "supervisor/canned.html", {
        "items": items, "teams": _editable_teams(request.user), "can_global": request.user.is_admin_role,
    })


def _team_from(value):
    if not value or not str(value).isdecimal():
        return None
    return get_object_or_404(Team, pk=int(value))


def _editable_teams(user):
    return selectors.teams_managed_by(user).order_by("name")


@require_role(*SUPERVISOR_ROLES)
def canned_edit(request, pk):
    canned = get_object_or_404(inbox_selectors.canned_responses_for(request.user), pk=pk)
    if not can_edit_canned(request.user, canned.team):
        raise PermissionDenied("Only the team's leads (global ones: admins) can change this.")
    if request.method == "POST":
        try:
            canned_response_save(actor=request.user, canned=canned,
                                          shortcut=request.POST.get("shortcut", ""),
                                          title=request.POST.get("title", ""), text=request.POST.get("text", ""),
                                          team=_team_from(request.POST.get("team")))
            flash.success(request, "Canned response saved.")
            return redirect("supervisor:canned")
        except DomainError as exc:
            flash.error(request, exc.detail)
    return render(request, "supervisor/canned_edit.html", {
        "canned": canned, "teams": _editable_teams(request.user), "can_global": request.user.is_admin_role,
    })


@require_role(*SUPERVISOR_ROLES)
@require_POST
def canned_delete(request, pk):
    # another team's response is a 404, as on the edit page (docs/roles.md, Ownership)
    canned = get_object_or_404(inbox_selectors.canned_responses_for(request.user), pk=pk)
    canned_response_delete(actor=request.user, canned=canned)
    flash.success(request, f"/{canned.shortcut} deleted.")
    return redirect("supervisor:canned")


# --- supervisor: audit log ------------------------------------------------------------------------------

class _Echo:
    def write(self, value):
        return value


def audit_csv_response(rows, filename="audit-log.csv") -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow(audit_log.CSV_FIELDS)
        for row in rows:
            d = row.as_dict()
            d["data"] = json.dumps(d["data"], sort_keys=True, default=str)
            # A cell starting with = + - @ runs as a formula in spreadsheets: defuse it.
            yield writer.writerow([_csv_safe(d[f]) for f in audit_log.CSV_FIELDS])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _csv_safe(value):
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


@require_role(*SUPERVISOR_ROLES)
def audit(request):
    filters = {k: v for k, v in request.GET.items() if v and k != "format"}
    try:
        if request.GET.get("format") == "csv":
            return audit_csv_response(audit_log.audit_log_iter(user=request.user, filters=filters))
        rows = audit_log.audit_log(user=request.user, filters=filters, limit=100)
    except DomainError as exc:  # a filter it cannot take (2024-02-31): the form says so
        return render(request, "supervisor/audit.html", {
            "rows": [], "filters": filters, "error": exc.detail, "csv_query": ""}, status=400)
    next_query = urlencode(dict(filters, before=rows[-1].at.isoformat())) if len(rows) == 100 else None
    return render(request, "supervisor/audit.html", {
        "rows": rows, "filters": filters, "next_query": next_query,
        "csv_query": urlencode(dict(filters, format="csv")),
    })
