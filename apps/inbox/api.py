"""REST API for conversations under /api/v1/. Views parse, call one service or
selector, and serialise; errors are JSON {"detail": ...}."""
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.accounts.permissions import CanWorkConversations, IsSupervisorOrReadOnly
from apps.contacts.models import Customer
from apps.core.errors import DomainError
from apps.core.pagination import NewestFirstCursor
from apps.routing.configuration import queue_create, queue_delete, queue_update
from apps.routing.selectors import queues_managed_by, queues_visible_to

from . import selectors, services
from .canned import canned_response_delete, canned_response_save
from .filters import ConversationFilterSet
from .models import CannedResponse, Conversation, Queue, Status
from .serializers import (AssignInputSerializer, CannedResponseSerializer, ConversationSerializer, CustomerSerializer,
                          MessageSerializer, NoteSerializer, PriorityInputSerializer, QueueSerializer,
                          ReplyInputSerializer, SnoozeInputSerializer, SpamInputSerializer, StatusInputSerializer,
                          StatusResultSerializer, TagsInputSerializer)


class ConversationViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ConversationSerializer
    permission_classes = [CanWorkConversations]
    pagination_class = NewestFirstCursor
    queryset = Conversation.objects.none()
    # Validates the list's filters (a bad value: 400) and documents them in the schema;
    # the FilterSet hands the valid ones to selectors.conversation_list_for_user.
    filterset_class = ConversationFilterSet

    def get_queryset(self):
        return Conversation.objects.none()

    def get_object(self):
        try:
            return selectors.conversation_get_for_user(user=self.request.user, conversation_id=int(self.kwargs["pk"]))
        except (Conversation.DoesNotExist, ValueError):
            from django.http import Http404

            raise Http404("No conversation with that id.")

    # The whole thread as one list, in the order it happened: not paginated (the schema
    # said it was, as the list's cursor pagination applied to every action by default).
    @extend_schema(responses=MessageSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def messages(self, request, pk=None):
        conversation = self.get_object()
        thread = selectors.conversation_thread(conversation=conversation)
        return Response(MessageSerializer(thread["messages"], many=True).data)

    @extend_schema(request=ReplyInputSerializer, responses={202: MessageSerializer})
    @action(detail=True, methods=["post"])
    def reply(self, request, pk=None):
        conversation = self.get_object()
        data = ReplyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        message = services.reply_create(conversation=conversation, agent=request.user, **data.validated_data)
        return Response(MessageSerializer(message).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=AssignInputSerializer, responses=ConversationSerializer)
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        conversation = self.get_object()
        data = AssignInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assignee = None
        if data.validated_data["assignee"] is not None:
            # The page's rule: a working user of the conversation's team, who will see it.
            assignee = selectors.conversation_assignees(conversation=conversation, actor=request.user).filter(
                pk=data.validated_data["assignee"]).first()
            if assignee is None:
                raise DomainError("That user cannot take this conversation: pick someone of its queue's team.")
        conversation = services.conversation_assign(
            conversation=conversation, assignee=assignee, actor=request.user, reason=data.validated_data["reason"]
        )
        return Response(ConversationSerializer(self.get_object()).data)

    @extend_schema(request=StatusInputSerializer, responses=StatusResultSerializer,
                   description="Sets the status. `resolved` also sends a survey to the customer by private message: "
                               "`survey` (\"csat\" | \"ces\" | \"nps\" | \"none\"), else the channel account's "
                               "policy; `survey` in the response says whether it went, or why not (null: none was due).")
    @action(detail=True, methods=["post"], url_path="status")
    def set_status(self, request, pk=None):
        conversation = self.get_object()
        data = StatusInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        survey = None
        if values["status"] == Status.RESOLVED:
            resolved = services.conversation_resolve(conversation=conversation, actor=request.user,
                                                     survey=values.get("survey"), reason=values["reason"])
            if resolved.survey is not None:
                survey = {"kind": resolved.survey.kind, "sent": resolved.survey.sent, "detail": resolved.note}
        else:
            services.conversation_status_set(conversation=conversation, actor=request.user, status=values["status"],
                                             reason=values["reason"])
        return Response(StatusResultSerializer(self.get_object(), context={"survey": survey}).data)

    # The inbox's page actions (apps/inbox/views.py), same services: audit event and live push included.

    @extend_schema(request=SnoozeInputSerializer, responses=ConversationSerializer,
                   description="Hides the conversation from the working views until `until`; `null` wakes it.")
    @action(detail=True, methods=["post"])
    def snooze(self, request, pk=None):
        conversation = self.get_object()
        data = SnoozeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.conversation_snooze(conversation=conversation, until=data.validated_data["until"], actor=request.user)
        return Response(ConversationSerializer(self.get_object()).data)

    @extend_schema(request=TagsInputSerializer, responses=ConversationSerializer,
                   description="Adds and removes tags; the conversation's other tags stay.")
    @action(detail=True, methods=["post"])
    def tags(self, request, pk=None):
        conversation = self.get_object()
        data = TagsInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.conversation_tags_change(conversation=conversation, actor=request.user, **data.validated_data)
        return Response(ConversationSerializer(self.get_object()).data)

    @extend_schema(request=PriorityInputSerializer, responses=ConversationSerializer,
                   description="Sets the priority by hand: a score 0-100 (and the bucket it falls in) or a bucket. "
                               "Routing keeps a hand-set bucket when it re-scores.")
    @action(detail=True, methods=["post"])
    def priority(self, request, pk=None):
        conversation = self.get_object()
        data = PriorityInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.conversation_priority_set(
            conversation=conversation, actor=request.user, score=data.validated_data.get("priority"),
            bucket=data.validated_data.get("priority_bucket"), reason=data.validated_data["reason"])
        return Response(ConversationSerializer(self.get_object()).data)

    @extend_schema(request=SpamInputSerializer, responses=ConversationSerializer,
                   description="Marks spam (it leaves every working view) or, with `spam: false`, takes it back.")
    @action(detail=True, methods=["post"])
    def spam(self, request, pk=None):
        conversation = self.get_object()
        data = SpamInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.conversation_mark_spam(conversation=conversation, actor=request.user, spam=data.validated_data["spam"])
        return Response(ConversationSerializer(self.get_object()).data)

    @extend_schema(request=NoteSerializer, responses={201: NoteSerializer})
    @action(detail=True, methods=["post"])
    def notes(self, request, pk=None):
        conversation = self.get_object()
        data = NoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        note = services.note_create(conversation=conversation, author=request.user, text=data.validated_data["text"])
        return Response(NoteSerializer(note).data, status=status.HTTP_201_CREATED)


class QueueViewSet(viewsets.ModelViewSet):
    """Queues of the user's teams (docs/roles.md, Ownership): another team's queue is a
    404; supervisors change the queues of the teams they lead (admins: all). Writes go
    through routing.services (audited; one default per team; a queue in use is not deleted)."""

    serializer_class = QueueSerializer
    permission_classes = [IsSupervisorOrReadOnly]
    queryset = Queue.objects.none()
    pagination_class = None

    def get_queryset(self):
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return queues_visible_to(self.request.user)
        return queues_managed_by(self.request.user)

    def perform_create(self, serializer):
        serializer.instance = queue_create(actor=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = queue_update(queue=serializer.instance, actor=self.request.user,
                                           **serializer.validated_data)

    def perform_destroy(self, instance):
        queue_delete(queue=instance, actor=self.request.user)


class _CannedInputSerializer(CannedResponseSerializer):
    class Meta(CannedResponseSerializer.Meta):
        validators = []  # the service checks uniqueness with a readable message


class CannedResponseViewSet(viewsets.ModelViewSet):
    """Global canned responses (team null) and per-team ones. Everyone working sees
    the global ones and their teams'; admins edit global ones, team leads their
    team's (docs/roles.md). Writes go through accounts.services (audited)."""

    serializer_class = CannedResponseSerializer
    permission_classes = [IsSupervisorOrReadOnly]
    queryset = CannedResponse.objects.none()
    pagination_class = None

    def get_queryset(self):
        return selectors.canned_responses_for(self.request.user)

    def _save(self, request, canned=None, partial=False):
        data = _CannedInputSerializer(canned, data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        values = {"shortcut": canned.shortcut, "title": canned.title, "text": canned.text,
                  "team": canned.team} if canned else {}
        values.update(data.validated_data)
        return canned_response_save(actor=request.user, canned=canned, shortcut=values.get("shortcut", ""),
                                    title=values.get("title", ""), text=values.get("text", ""),
                                    team=values.get("team"))

    def create(self, request, *args, **kwargs):
        return Response(CannedResponseSerializer(self._save(request)).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        canned = self._save(request, self.get_object(), partial=kwargs.get("partial", False))
        return Response(CannedResponseSerializer(canned).data)

    def destroy(self, request, *args, **kwargs):
        canned_response_delete(actor=request.user, canned=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class CustomerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = CustomerSerializer
    permission_classes = [CanWorkConversations]
    queryset = Customer.objects.none()
    pagination_class = NewestFirstCursor

    def get_queryset(self):
        # Customers with a conversation the user sees (docs/roles.md, Ownership); others are a 404.
        return selectors.customers_visible_to(self.request.user).prefetch_related("identities").order_by("-id")
