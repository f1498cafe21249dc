from django.urls import path

from . import views

app_name = "supervisor"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("live/", views.dashboard_live, name="dashboard-live"),
    path("agents/", views.agents, name="agents"),
    path("agents/<int:pk>/capacity/", views.agent_capacity, name="agent-capacity"),
    path("agents/<int:pk>/workload/", views.agent_workload, name="agent-workload"),
    path("teams/", views.teams, name="teams"),
    path("teams/<int:pk>/", views.team_edit, name="team"),
    path("reassign/", views.reassign, name="reassign"),
    path("canned/", views.canned_list, name="canned"),
    path("canned/<int:pk>/", views.canned_edit, name="canned-edit"),
    path("canned/<int:pk>/delete/", views.canned_delete, name="canned-delete"),
    path("audit/", views.audit, name="audit"),
]
