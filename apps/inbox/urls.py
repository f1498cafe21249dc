from django.urls import path

from . import views

app_name = "inbox"
urlpatterns = [
    path("", views.conversation_list, name="list"),
    path("c/<int:pk>/", views.conversation_detail, name="detail"),
    path("c/<int:pk>/reply/", views.conversation_reply, name="reply"),
    path("c/<int:pk>/status/", views.conversation_status, name="status"),
    path("c/<int:pk>/assign/", views.conversation_assign, name="assign"),
    path("c/<int:pk>/note/", views.conversation_note, name="note"),
]
