from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from ops.views import pool_scaling

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("api/v1/", include("config.api_urls")),
    # OpenAI's Videos API shapes, for code written against the Sora API (openai_api/).
    path("openai/v1/", include("openai_api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its script from a URL: the CSP allows no inline scripts.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("billing/", include("billing.urls")),
    path("staff/", include("ops.urls")),
    # For autoscalers (KEDA, bench/fleet.py): a pool's desired worker count (ops/scaling.py).
    path("ops/scaling/<str:pool>", pool_scaling, name="pool-scaling"),
    path("team/invitations/", include("accounts.invitation_urls")),
    path("", include("accounts.team_urls")),
    path("", include("safety.urls")),
    path("", include("generation.urls")),
]

# A database outage is a 503 (JSON on the APIs), whatever part of the stack noticed it.
handler500 = "core.outages.server_error"
