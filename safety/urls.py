from django.urls import path

from . import views

app_name = "safety"

urlpatterns = [
    path("verify", views.verify, name="verify"),
    path("s/<share_token:token>/report/", views.report, name="report"),
    path("staff/moderation/", views.moderation_queue, name="moderation"),
    path("staff/moderation/decide", views.moderation_decide, name="moderation_decide"),
    path("staff/moderation/suspension", views.moderation_suspension, name="moderation_suspension"),
]
