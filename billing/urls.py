from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("plan/", views.plan_choose, name="plan_choose"),
    path("credits/", views.pack_buy, name="pack_buy"),
    path("portal/", views.portal, name="portal"),
    path("stripe/webhook/", views.stripe_webhook, name="stripe_webhook"),
]
