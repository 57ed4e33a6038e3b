from django.apps import AppConfig
from django.db.models.signals import post_migrate


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from .plans import plans_seed_missing

        # New installs get the plans of billing/plans.toml; existing rows are left as the
        # operator edited them (`manage.py sync_plans` updates them from the file).
        post_migrate.connect(lambda sender, **kwargs: plans_seed_missing(), sender=self, weak=False)
