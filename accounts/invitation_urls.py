"""Admins' invitation actions, mounted under the team settings (e.g. at /team/invitations/)."""

from django.urls import path

from . import invitation_views

app_name = "invitations"

urlpatterns = [
    path("", invitation_views.create, name="create"),
    path("<int:invitation_id>/revoke/", invitation_views.revoke, name="revoke"),
]
