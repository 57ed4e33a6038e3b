from django.urls import path, re_path

from billing import api as billing_api
from generation import api
from safety import api as safety_api

app_name = "api"

urlpatterns = [
    path("videos", api.VideoListCreate.as_view(), name="videos"),
    path("videos/<uuid:job_id>", api.VideoDetail.as_view(), name="video"),
    path("videos/<uuid:job_id>/content", api.VideoContent.as_view(), name="video_content"),
    path("videos/<uuid:job_id>/thumbnail", api.VideoThumbnail.as_view(), name="video_thumbnail"),
    path("videos/<uuid:job_id>/cancel", api.VideoCancel.as_view(), name="video_cancel"),
    path("videos/<uuid:job_id>/remix", api.VideoRemix.as_view(), name="video_remix"),
    path("videos/<uuid:job_id>/full-quality", api.VideoFullQuality.as_view(), name="video_full_quality"),
    path("videos/<uuid:job_id>/spritesheet", api.VideoSpritesheet.as_view(), name="video_spritesheet"),
    path("models", api.ModelList.as_view(), name="models"),
    path("loras", api.LoraListCreate.as_view(), name="loras"),
    path("loras/<uuid:lora_id>", api.LoraDetail.as_view(), name="lora"),
    path("account", billing_api.AccountView.as_view(), name="account"),
    path("usage", billing_api.UsageView.as_view(), name="usage"),
    path("budgets", billing_api.BudgetList.as_view(), name="budgets"),
    path("budgets/<int:budget_id>", billing_api.BudgetDetail.as_view(), name="budget"),
    path("verify", safety_api.VerifyApi.as_view(), name="verify"),
    re_path(r"^[\s\S]*$", api.NotFound.as_view()),  # [\s\S]: even a path with a newline
]
