from django.urls import path, re_path, register_converter

from . import views
from .converters import VideoIdConverter

register_converter(VideoIdConverter, "video_id")

app_name = "openai"

urlpatterns = [
    path("models", views.Models.as_view(), name="models"),
    path("videos", views.Videos.as_view(), name="videos"),
    path("videos/<video_id:job_id>", views.Video.as_view(), name="video"),
    path("videos/<video_id:job_id>/content", views.VideoContent.as_view(), name="video_content"),
    path("videos/<video_id:job_id>/remix", views.VideoRemix.as_view(), name="video_remix"),
    re_path(r"^[\s\S]*$", views.NotFound.as_view()),
]
