"""Websocket routes. Apps add their consumers here."""
from django.urls import path

from apps.inbox.consumers import InboxConsumer

websocket_urlpatterns = [
    path("ws/inbox/", InboxConsumer.as_asgi()),
]
