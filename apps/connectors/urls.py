from django.urls import path

from . import channel_views, views

app_name = "connectors"
urlpatterns = [
    path("health/", views.connector_health, name="health"),
    path("health/<int:pk>/poll/", views.connector_poll_now, name="poll_now"),
    # the Channels pages (admins): docs/connectors.md, "Connecting a network"
    path("channels/", channel_views.channel_list, name="channels"),
    path("channels/connect/", channel_views.channel_connect, name="channel_connect"),
    path("channels/connect/<slug:provider>/", channel_views.channel_new, name="channel_new"),
    path("channels/<int:pk>/", channel_views.channel_detail, name="channel_detail"),
    path("channels/<int:pk>/edit/", channel_views.channel_edit, name="channel_edit"),
    path("channels/<int:pk>/test/", channel_views.channel_test, name="channel_test"),
    path("channels/<int:pk>/disable/", channel_views.channel_disable, name="channel_disable"),
    path("channels/<int:pk>/enable/", channel_views.channel_enable, name="channel_enable"),
    path("channels/<int:pk>/surveys/", channel_views.channel_surveys, name="channel_surveys"),
    path("channels/<int:pk>/secrets/", channel_views.channel_secrets, name="channel_secrets"),
]
