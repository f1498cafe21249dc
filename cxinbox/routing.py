"""Websocket routes. Apps add their consumers here."""
from django.urls import path

from apps.inbox.consumers import InboxConsumer
from apps.reports.consumers import ReportsAlertConsumer

websocket_urlpatterns = [
    path("ws/inbox/", InboxConsumer.as_asgi()),
    path("ws/reports/", ReportsAlertConsumer.as_asgi()),
]
