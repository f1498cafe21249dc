from django.urls import path

from . import views

app_name = "inbox"
urlpatterns = [
    path("", views.conversation_list, name="list"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/read/", views.notifications_read, name="notifications_read"),
    path("c/<int:pk>/", views.conversation_detail, name="detail"),
    path("c/<int:pk>/live/", views.conversation_live, name="live"),
    path("c/<int:pk>/reply/", views.conversation_reply, name="reply"),
    path("c/<int:pk>/status/", views.conversation_status, name="status"),
    path("c/<int:pk>/assign/", views.conversation_assign, name="assign"),
    path("c/<int:pk>/note/", views.conversation_note, name="note"),
    path("c/<int:pk>/snooze/", views.conversation_snooze, name="snooze"),
    path("c/<int:pk>/tags/", views.conversation_tags, name="tags"),
    path("c/<int:pk>/priority/", views.conversation_priority, name="priority"),
    path("c/<int:pk>/spam/", views.conversation_spam, name="spam"),
    path("c/<int:pk>/presence/", views.conversation_presence, name="presence"),
    path("c/<int:pk>/m/<int:message_id>/retry/", views.message_retry, name="retry"),
]
