from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("api/v1/", include("config.api_urls")),
    path("billing/", include("billing.urls")),
    path("team/invitations/", include("accounts.invitation_urls")),
    path("", include("accounts.team_urls")),
    path("", include("generation.urls")),
]
