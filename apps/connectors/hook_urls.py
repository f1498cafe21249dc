"""Push delivery endpoints, mounted at /hooks/ (outside /api/: senders are networks, not users)."""
from django.urls import path

from .hooks import hook_receive

urlpatterns = [
    path("<slug:provider>/<int:account_id>/", hook_receive, name="hook_receive"),
]
