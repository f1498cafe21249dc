from django.urls import path

from . import views

app_name = "routing"
urlpatterns = [
    path("rules/", views.rule_list, name="rules"),
    path("rules/new/", views.rule_edit, name="rule-new"),
    path("rules/<int:pk>/", views.rule_edit, name="rule-edit"),
    path("rules/<int:pk>/delete/", views.rule_delete, name="rule-delete"),
    path("rules/<int:pk>/move/<str:direction>/", views.rule_move, name="rule-move"),
    path("sla/", views.sla_list, name="sla"),
    path("sla/<int:pk>/", views.sla_list, name="sla-edit"),
    path("sla/<int:pk>/delete/", views.sla_delete, name="sla-delete"),
    path("hours/", views.hours_list, name="hours"),
    path("hours/<int:team_id>/", views.hours_edit, name="hours-edit"),
]
