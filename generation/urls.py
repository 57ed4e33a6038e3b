from django.urls import path

from . import views

app_name = "generation"

urlpatterns = [
    path("", views.studio, name="studio"),
    path("quote", views.quote, name="quote"),
    path("jobs/<uuid:job_id>/", views.job_detail, name="job_detail"),
    path("jobs/<uuid:job_id>/video.mp4", views.job_video, name="job_video"),
    path("jobs/<uuid:job_id>/poster.jpg", views.job_poster, name="job_poster"),
    path("jobs/<uuid:job_id>/cancel/", views.job_cancel_view, name="job_cancel"),
]
