from django.urls import path

from . import team_views

app_name = "teams"

urlpatterns = [
    path("team/", team_views.team_settings, name="settings"),
    path("team/rename/", team_views.team_rename, name="rename"),
    path("team/leave/", team_views.team_leave, name="leave"),
    path("team/delete/", team_views.team_delete, name="delete"),
    path("team/members/<int:membership_id>/role/", team_views.member_role, name="member_role"),
    path("team/members/<int:membership_id>/remove/", team_views.member_remove, name="member_remove"),
    path("team/keys/", team_views.key_list, name="keys"),
    path("team/keys/<int:key_id>/revoke/", team_views.key_revoke, name="key_revoke"),
    path("team/webhook-secret/rotate/", team_views.webhook_secret_rotate, name="webhook_secret_rotate"),
    path("teams/", team_views.team_list, name="list"),
    path("teams/<int:team_id>/switch/", team_views.team_switch, name="switch"),
]
