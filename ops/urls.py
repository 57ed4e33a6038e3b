from django.urls import path

from . import views

app_name = "ops"

urlpatterns = [
    path("", views.money, name="money"),
    path("operations/", views.operations, name="operations"),
    path("customers/", views.customers, name="customers"),
    path("teams/<int:team_id>/", views.team, name="team"),
    path("teams/<int:team_id>/credits/", views.team_credits, name="team_credits"),
    path("teams/<int:team_id>/suspend/", views.team_suspend, name="team_suspend"),
    path("teams/<int:team_id>/restore/", views.team_restore, name="team_restore"),
    path("exports/", views.exports_page, name="exports"),
    path("exports/jobs.csv", views.export_jobs, name="export_jobs"),
    path("exports/ledger.csv", views.export_ledger, name="export_ledger"),
    path("audit/", views.audit, name="audit"),
    path("moderation/", views.moderation_queue, name="moderation"),
    path("moderation/decide", views.moderation_decide, name="moderation_decide"),
    path("moderation/suspension", views.moderation_suspension, name="moderation_suspension"),
]
