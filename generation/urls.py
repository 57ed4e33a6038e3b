from django.urls import path

from . import lora_views, views

app_name = "generation"

urlpatterns = [
    path("", views.studio_page, name="studio"),
    path("quote", views.quote, name="quote"),
    path("jobs/status", views.live_status, name="live_status"),
    path("gallery/", views.gallery, name="gallery"),
    path("loras/", lora_views.loras_page, name="loras"),
    path("loras/<uuid:lora_id>/delete/", lora_views.lora_delete_view, name="lora_delete"),
    path("jobs/<uuid:job_id>/", views.job_detail, name="job_detail"),
    path("jobs/<uuid:job_id>/video.mp4", views.job_video, name="job_video"),
    path("jobs/<uuid:job_id>/poster.jpg", views.job_poster, name="job_poster"),
    path("jobs/<uuid:job_id>/cancel/", views.job_cancel_view, name="job_cancel"),
    path("jobs/<uuid:job_id>/delete/", views.job_delete_view, name="job_delete"),
    path("jobs/<uuid:job_id>/share/", views.job_share_view, name="job_share"),
    path("jobs/<uuid:job_id>/full-quality/", views.job_full_quality_view, name="job_full_quality"),
    # Public share links: the token is the only key (generation/sharing.py).
    path("s/<share_token:token>/", views.shared_page, name="shared"),
    path("s/<share_token:token>/video.mp4", views.shared_video, name="shared_video"),
    path("s/<share_token:token>/poster.jpg", views.shared_poster, name="shared_poster"),
]
