from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _seed_plans(sender, using="default", **kwargs) -> None:
    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor

    from .plans import plans_seed_missing

    # After a rollback the tables are older than the Plan model: seeding would fail (and the
    # plans are there already). Seed only a database whose billing tables are up to date.
    executor = MigrationExecutor(connections[using])
    leaves = [node for node in executor.loader.graph.leaf_nodes() if node[0] == sender.label]
    if executor.migration_plan(leaves):
        return
    plans_seed_missing()


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        # New installs get the plans of billing/plans.toml; existing rows are left as the
        # operator edited them (`manage.py sync_plans` updates them from the file).
        post_migrate.connect(_seed_plans, sender=self, weak=False)
