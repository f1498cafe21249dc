"""The web inbox: server-rendered pages; forms post to the same services as the API."""
import datetime as dt

from django.contrib import messages as flash
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_POST

from apps.accounts.permissions import WORKING_ROLES, user_has_role
from apps.core.errors import DomainError

from . import selectors, services
from .models import Conversation, Status


def _require_worker(request):
    if not user_has_role(request.user, *WORKING_ROLES):
        raise PermissionDenied("Your role cannot open conversations.")


def _conversation_or_404(request, pk):
    try:
        return selectors.conversation_get_for_user(user=request.user, conversation_id=pk)
    except Conversation.DoesNotExist:
        raise Http404("No conversation with that id.") from None


@login_required
def conversation_list(request):
    _require_worker(request)
    filters = {k: v for k, v in request.GET.items() if v}
    conversations = selectors.conversation_list_for_user(user=request.user, filters=filters)[:100]
    return render(request, "inbox/list.html", {"conversations": conversations, "filters": filters,
                                               "statuses": Status.choices})


@login_required
def conversation_detail(request, pk):
    _require_worker(request)
    conversation = _conversation_or_404(request, pk)
    thread = selectors.conversation_thread(conversation=conversation)
    return render(request, "inbox/thread.html", {
        # "messages" is the flash-message context name: the thread's go under another
        "conversation": conversation, "thread_messages": thread["messages"], "notes": thread["notes"],
        "events": thread["events"], "statuses": Status.choices,
        "agents": get_user_model().objects.filter(is_active=True, role__in=WORKING_ROLES).order_by("username"),
        "draft_started_at": dt.datetime.now(dt.timezone.utc).isoformat(),
    })


@login_required
@require_POST
def conversation_reply(request, pk):
    _require_worker(request)
    conversation = _conversation_or_404(request, pk)
    try:
        services.reply_create(
            conversation=conversation, agent=request.user, text=request.POST.get("text", ""),
            private=request.POST.get("private") == "on",
            draft_started_at=parse_datetime(request.POST.get("draft_started_at", "") or "") or None,
        )
        flash.success(request, "Reply queued; it shows as sent once the network accepts it.")
    except DomainError as exc:
        flash.error(request, exc.detail)
    return redirect("inbox:detail", pk=pk)


@login_required
@require_POST
def conversation_status(request, pk):
    _require_worker(request)
    conversation = _conversation_or_404(request, pk)
    try:
        services.conversation_status_set(conversation=conversation, status=request.POST.get("status", ""),
                                         actor=request.user)
    except DomainError as exc:
        flash.error(request, exc.detail)
    return redirect("inbox:detail", pk=pk)


@login_required
@require_POST
def conversation_assign(request, pk):
    _require_worker(request)
    conversation = _conversation_or_404(request, pk)
    assignee_id = request.POST.get("assignee")
    assignee = get_user_model().objects.filter(pk=assignee_id, is_active=True).first() if assignee_id else None
    services.conversation_assign(conversation=conversation, assignee=assignee, actor=request.user,
                                 reason=request.POST.get("reason", ""))
    return redirect("inbox:detail", pk=pk)


@login_required
@require_POST
def conversation_note(request, pk):
    _require_worker(request)
    conversation = _conversation_or_404(request, pk)
    try:
        services.note_create(conversation=conversation, author=request.user, text=request.POST.get("text", ""))
    except DomainError as exc:
        flash.error(request, exc.detail)
    return redirect("inbox:detail", pk=pk)
