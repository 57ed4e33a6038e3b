from django.urls import path

from . import budget_views, views

app_name = "billing"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("plan/", views.plan_choose, name="plan_choose"),
    path("credits/", views.pack_buy, name="pack_buy"),
    path("portal/", views.portal, name="portal"),
    path("budgets/", budget_views.budgets_page, name="budgets"),
    path("budgets/<int:budget_id>/", budget_views.budget_change, name="budget_change"),
    path("budgets/<int:budget_id>/delete/", budget_views.budget_remove, name="budget_remove"),
    path("usage/", budget_views.usage_page, name="usage"),
    path("stripe/webhook/", views.stripe_webhook, name="stripe_webhook"),
]
