"""The web inbox: server-rendered pages; forms post to the same services as the API.

Pages are plain Django templates. htmx refreshes parts of them (the list, the
thread) when the websocket says something changed, or every few seconds when
there is no websocket. Every view checks the role, then visibility through the
selectors (a conversation you may not see is a 404)."""
import datetime as dt
import re
import uuid
import zoneinfo

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.middleware import presence_passive
from apps.accounts.permissions import WORKING_ROLES, user_has_role
from apps.connectors.models import Provider
from apps.connectors.providers import provider_class
from apps.core.errors import DomainError
from apps.core.params import EARLIEST, LATEST

from . import presence, selectors, sending, services
from .canned import canned_for_composer
from .filters import valid_list_filters
from .list_rows import conversation_rows
from .models import Conversation, Message, PriorityBucket, Status, Tag
from .signals import agent_work_signalled, survey_requested

PAGE_SIZE = 50
MAX_PAGE = 100_000  # the list pages further than anyone scrolls; beyond: an empty page


def _require_worker(request):
    if not user_has_role(request.user, *WORKING_ROLES):
        raise PermissionDenied("Your role cannot open conversations.")


def _conversation_or_404(request, pk):
    try:
        return selectors.conversation_get_for_user(user=request.user, conversation_id=pk)
    except Conversation.DoesNotExist:
        raise Http404("No conversation with that id.") from None


def _is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _survey_available() -> bool:
    return survey_requested.has_listeners()  # reports installed: it sends them


def _list_filters(request) -> dict:
    filters = {k: v.strip() for k, v in request.GET.items() if v and v.strip() and k not in ("page", "partial")}
    # A value the list cannot take (an impossible date, a NUL, a bad id) is ignored, not a 500.
    filters = valid_list_filters(filters)
    if filters.get("view") not in selectors.VIEWS:
        filters["view"] = "all"
    if filters["view"] == "queue" and not str(filters.get("queue", "")).isdigit():
        filters["view"] = "all"
        filters.pop("queue", None)
    return filters


@login_required
@require_GET
def conversation_list(request):
    _require_worker(request)
    filters = _list_filters(request)
    try:
        page = max(0, int(request.GET.get("page", 0)))
    except ValueError:
        page = 0
    page = min(page, MAX_PAGE)  # ?page=99999999999999999999: an OFFSET past bigint was a 500
    rows = selectors.conversation_page_for_user(user=request.user, filters=filters, offset=page * PAGE_SIZE,
                                                limit=PAGE_SIZE)
    has_more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    viewers = {pk: [v for v in found if v["user_id"] != request.user.pk]
               for pk, found in presence.presence_for(r["id"] for r in rows).items()}
    queues = selectors.queues_for_user(user=request.user)
    context = {
        "rows": conversation_rows(rows, user=request.user, viewers=viewers),
        "filters": filters, "page": page, "has_more": has_more,
        "counts": selectors.inbox_counts(user=request.user, queues=queues), "queues": queues,
        "views": selectors.VIEWS, "statuses": Status.choices, "priorities": PriorityBucket.choices,
        "channels": Provider.choices, "current_view": filters["view"],
        "current_queue": int(filters["queue"]) if filters.get("queue", "").isdecimal() else None,
    }
    if _is_htmx(request) and request.GET.get("partial") == "rows":
        # "Load more": just the next rows.
        return render(request, "inbox/_rows.html", context)
    if _is_htmx(request):
        return render(request, "inbox/_list.html", context)
    # The assignee filter's options as one piece of HTML: 200 agents as model instances and a
    # template loop were ~2.5 ms of the page's ~22 ms of CPU (docs/performance-history.md).
    chosen = filters.get("assignee")
    context.update(tags=list(Tag.objects.order_by("name").values_list("name", flat=True)[:200]),
                   agent_options=format_html_join("", '<option value="{}"{}>{}</option>', (
                       (pk, mark_safe(" selected") if str(pk) == chosen else "", name)
                       for pk, name in selectors.assignee_choices())))
    return render(request, "inbox/list.html", context)


# Audit events the thread shows among the messages, where the agent reads the conversation.
TIMELINE_EVENT_KINDS = {"survey_not_sent"}
# The resolve form's survey choices, in the order of the select.
SURVEY_CHOICES = [("none", "No survey"), ("csat", "CSAT (1-5)"), ("ces", "CES, effort (1-7)"), ("nps", "NPS (0-10)")]


def _timeline(messages, notes, events=()) -> list[dict]:
    """Messages, private notes and the few events an agent must see there, as things happened."""
    items = [{"message": m, "at": m.sent_at} for m in messages] + [{"note": n, "at": n.created_at} for n in notes]
    items += [{"event": e, "at": e.created_at} for e in events if e.kind in TIMELINE_EVENT_KINDS]
    return sorted(items, key=lambda item: item["at"])


def _thread_context(request, conversation, *, draft_text="", draft_started_at=None, private=None):
    thread = selectors.conversation_thread(conversation=conversation)
    provider = provider_class(conversation.channel_account.provider)
    if private is None:  # a fresh draft answers in kind: a DM thread by DM, a public mention in public
        private = not conversation.is_public and provider.supports_private_replies
    canned = selectors.canned_responses_for_user(user=request.user)
    viewers = presence.presence_for([conversation.pk]).get(conversation.pk, [])
    return {
        # "messages" is the flash-message context name: the thread's go under another
        "conversation": conversation, "thread_messages": thread["messages"], "notes": thread["notes"],
        "timeline": _timeline(thread["messages"], thread["notes"], thread["events"]),
        "events": thread["events"], "statuses": Status.choices, "priorities": PriorityBucket.choices,
        # The same rule as the assign API: people of the conversation's team (docs/roles.md, Ownership).
        "agents": list(selectors.conversation_assignees(conversation=conversation, actor=request.user)
                       .order_by("first_name", "username")),
        "other_conversations": selectors.customer_other_conversations(user=request.user, conversation=conversation),
        "canned": canned_for_composer(canned, conversation=conversation, agent=request.user),
        "max_length": provider.reply_limit(private=False), "max_private_length": provider.reply_limit(private=True),
        "supports_private": provider.supports_private_replies,
        "draft_text": draft_text, "draft_private": private,
        "draft_started_at": draft_started_at or timezone.now().isoformat(),
        "reply_token": uuid.uuid4().hex,  # this form's one reply (reply_create's client_token)
        "viewers": [v for v in viewers if v["user_id"] != request.user.pk],
        "survey_available": _survey_available(),
        # The resolve form's survey: the channel's policy preselected (docs/reports.md, "Surveys").
        "survey_choices": SURVEY_CHOICES, "survey_default": conversation.channel_account.survey_auto,
        "survey_cap_days": conversation.channel_account.survey_cap_days,
        "tags_text": ", ".join(t.name for t in conversation.tags.all()),
        "all_tags": list(Tag.objects.order_by("name").values_list("name", flat=True)[:200]),
        "is_snoozed": bool(conversation.snoozed_until and conversation.snoozed_until > timezone.now()),
    }


@login_required
@require_GET
def conversation_detail(request, pk):
    _require_worker(request)
    conversation = _conversation_or_404(request, pk)
    services.conversation_mark_read(conversation=conversation, user=request.user)
    return render(request, "inbox/thread.html", _thread_context(request, conversation))


@presence_passive  # the thread's polling fallback: a timer, not the agent at work
@login_required
@require_GET
def conversation_live(request, pk):
    """The changing parts of a thread (header, messages, notes, activity) for htmx to swap in."""
    _require_worker(request)
    conversation = _conversation_or_404(request, pk)
    services.conversation_mark_read(conversation=conversation, user=request.user)
    thread = selectors.conversation_thread(conversation=conversation)
    return render(request, "inbox/_thread_live.html", {
        "conversation": conversation, "timeline": _timeline(thread["messages"], thread["notes"], thread["events"]),
        "events": thread["events"], "tags_text": ", ".join(t.name for t in conversation.tags.all()),
        "is_snoozed": bool(conversation.snoozed_until and conversation.snoozed_until > timezone.now()),
    })


def _back(pk):
    return redirect("inbox:detail", pk=pk)


def _reply_token(value: str) -> str | None:
    value = (value or "").strip()
    return value if re.fullmatch(r"[A-Za-z0-9_-]{8,64}", value) else None


@login_required
@require_POST
def conversation_reply(request, pk):
    _require_worker(request)
    conversation = _conversation_or_404(request, pk)
    text = request.POST.get("text", "")
    private = request.POST.get("private") in ("on", "1", "true", "dm")
    if request.POST.get("signature") == "on" and request.user.signature and text.strip():
        text = f"{text.rstrip()}\n{request.user.signature}"
    try:
        services.reply_create(
            conversation=conversation, agent=request.user, text=text, private=private,
            draft_started_at=parse_datetime(request.POST.get("draft_started_at", "") or "") or None,
            client_token=_reply_token(request.POST.get("reply_token", "")),
        )
    except DomainError as exc:
        # Keep the draft: show the thread as it is now (with whatever arrived), the
        # reason beside the composer, and a fresh draft start so the next send goes.
        context = _thread_context(request, conversation, draft_text=request.POST.get("text", ""), private=private)
        context["reply_error"] = exc.detail
        return render(request, "inbox/thread.html", context, status=exc.status_code)
    flash.success(request, "Reply queued; it shows as sent once the network accepts it.")
    return _back(pk)


@login_required
@require_POST
def conversation_status(request, pk):
    _require_worker(request)
    conversation = _conversation_or_404(request, pk)
    status = request.POST.get("status", "")
    try:
        if status == Status.RESOLVED:
            # The form's survey select ("" or absent: the channel's policy); the older checkbox means CSAT.
            resolved = services.conversation_resolve(conversation=conversation, actor=request.user,
                                                     survey=request.POST.get("survey") or None,
                                                     send_survey=request.POST.get("send_survey") == "on")
            if resolved.survey is not None and not resolved.survey.sent:
                flash.warning(request, resolved.note)
            else:
                flash.success(request, resolved.note or "Resolved.")
        else:
            services.conversation_status_set(conversation=conversation, status=status, actor=request.user)
    except DomainError as exc:
        flash.error(request, exc.detail)
    if status in (Status.RESOLVED, Status.CLOSED) and request.POST.get("next") == "list":
        return redirect("inbox:list")
    if status == Status.RESOLVED and request.POST.get("next") == "next":
        # Resolve moves on: the next conversation of the list the agent came from, else their work.
        following = selectors.conversation_next_for_user(user=request.user, after=conversation,
                                                         wanted_id=request.POST.get("next_id", ""))
        if following is None:
            flash.info(request, "Nothing else is waiting for you.")
            return redirect("inbox:list")
        return redirect("inbox:detail", pk=following.pk)
    return _back(pk)


@login_required
@require_POST
def conversation_assign(request, pk):
    _require_worker(request)
    conversation = _conversation_or_404(request, pk)
    assignee_id = request.POST.get("assignee")
    if assignee_id == "me":
        assignee_id = request.user.pk
    assignees = selectors.conversation_assignees(conversation=conversation, actor=request.user)
    assignee = assignees.filter(pk=assignee_id).first() if str(assignee_id or "").isdigit() else None
    if assignee_id and assignee is None:
        flash.error(request, "That person cannot take conversations.")
        return _back(pk)
    services.conversation_assign(conversation=conversation, assignee=assignee, actor=request.user,
                                 reason=request.POST.get("reason", ""))
    flash.success(request, f"Assigned to {assignee.display_name}." if assignee else "Unassigned.")
    return _back(pk)


@login_required
@require_POST
def conversation_note(request, pk):
    _require_worker(request)
    conversation = _conversation_or_404(request, pk)
    try:
        note = services.note_create(conversation=conversation, author=request.user, text=request.POST.get("text", ""))
        mentioned = [u.display_name for u in note.mentions.all()]
        if mentioned:
            flash.success(request, "Note added; notified " + ", ".join(mentioned) + ".")
    except DomainError as exc:
        flash.error(request, exc.detail)
    return _back(pk)


def _parse_snooze(request) -> dt.datetime | None:
    """`preset` (1h, 4h, tomorrow) or `until` from a datetime-local input, in the user's time zone."""
    now = timezone.now()
    try:
        tz = zoneinfo.ZoneInfo(request.user.time_zone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        tz = dt.timezone.utc
    preset = request.POST.get("preset", "")
    if preset in ("1h", "4h"):
        return now + dt.timedelta(hours=int(preset[0]))
    if preset == "tomorrow":
        local = now.astimezone(tz) + dt.timedelta(days=1)
        return local.replace(hour=9, minute=0, second=0, microsecond=0)
    try:
        until = parse_datetime(request.POST.get("until", "") or "")
    except ValueError:  # 2024-02-31T10:00: well formed, no such day
        until = None
    if until is None:
        raise DomainError("Pick when the conversation should come back.")
    if not EARLIEST <= until.date() <= LATEST:
        raise DomainError(f"Pick a time before {LATEST}.")
    return until if timezone.is_aware(until) else until.replace(tzinfo=tz)


@login_required
@require_POST
def conversation_snooze(request, pk):
    _require_worker(request)
    conversation = _conversation_or_404(request, pk)
    try:
        until = None if request.POST.get("wake") else _parse_snooze(request)
        services.conversation_snooze(conversation=conversation, until=until, actor=request.user)
        flash.success(request, "Snoozed: it comes back on its own." if until else "Back in the inbox.")
    except DomainError as exc:
        flash.error(request, exc.detail)
    return _back(pk)


@login_required
@require_POST
def conversation_tags(request, pk):
    _require_worker(request)
    conversation = _conversation_or_404(request, pk)
    try:
        services.conversation_tags_set(conversation=conversation, tags=request.POST.get("tags", ""),
                                       actor=request.user)
    except DomainError as exc:
        flash.error(request, f"Tags not saved: {exc.detail}")
    return _back(pk)


@login_required
@require_POST
def conversation_priority(request, pk):
    _require_worker(request)
    conversation = _conversation_or_404(request, pk)
    try:
        services.conversation_priority_set(conversation=conversation, bucket=request.POST.get("priority_bucket"),
                                           actor=request.user, reason=request.POST.get("reason", ""))
    except DomainError as exc:
        flash.error(request, exc.detail)
    return _back(pk)


@login_required
@require_POST
def conversation_spam(request, pk):
    _require_worker(request)
    conversation = _conversation_or_404(request, pk)
    spam = request.POST.get("spam", "1") != "0"
    services.conversation_mark_spam(conversation=conversation, actor=request.user, spam=spam)
    flash.success(request, "Marked as spam: it left the working views." if spam else "No longer spam.")
    return redirect("inbox:list") if spam else _back(pk)


@login_required
@require_POST
def message_retry(request, pk, message_id):
    _require_worker(request)
    conversation = _conversation_or_404(request, pk)
    message = conversation.messages.filter(pk=message_id, direction=Message.Direction.OUTBOUND).first()
    if message is None:
        raise Http404("No such reply.")
    try:
        sending.message_retry(message=message, actor=request.user)
        flash.success(request, "Sending again.")
    except DomainError as exc:
        flash.error(request, exc.detail)
    return _back(pk)


@presence_passive
@login_required
@require_POST
def conversation_presence(request, pk):
    """The HTTP heartbeat for browsers without a websocket: mark me here (typing or
    not) and answer who else is. JSON."""
    _require_worker(request)
    conversation = _conversation_or_404(request, pk)
    typing = {"1": True, "0": False}.get(request.POST.get("typing", ""))
    viewers = presence.presence_touch(conversation_id=conversation.pk, user=request.user, typing=typing)
    if typing or request.POST.get("active") == "1":  # input since the last poll: handle time
        agent_work_signalled.send(sender=Conversation, conversation_id=conversation.pk, agent_id=request.user.pk,
                                  kind="active")
    return JsonResponse({"viewers": [v for v in viewers if v["user_id"] != request.user.pk]})


@presence_passive
@login_required
@require_GET
def notifications(request):
    """Unread notifications (toasts when there is no websocket), JSON."""
    _require_worker(request)
    items = selectors.notifications_unread_for_user(user=request.user)
    return JsonResponse({"notifications": [{
        "id": n.pk, "kind": n.kind, "conversation_id": n.conversation_id,
        "actor": n.actor.display_name if n.actor else "",
        "handle": n.conversation.identity.handle, "url": reverse("inbox:detail", args=[n.conversation_id]),
    } for n in items]})


@login_required
@require_POST
def notifications_read(request):
    _require_worker(request)
    ids = [int(i) for i in request.POST.getlist("id") if i.isdecimal()] or None
    return JsonResponse({"marked": services.notifications_mark_read(user=request.user, ids=ids)})
