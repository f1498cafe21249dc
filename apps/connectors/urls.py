from django.urls import path

from . import views

app_name = "connectors"
urlpatterns = [
    path("health/", views.connector_health, name="health"),
    path("health/<int:pk>/poll/", views.connector_poll_now, name="poll_now"),
]
