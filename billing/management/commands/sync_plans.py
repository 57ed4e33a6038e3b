from django.core.management.base import BaseCommand

from billing.plans import PLANS_FILE, plans_sync


class Command(BaseCommand):
    help = f"Make every plan and credit pack in the database match {PLANS_FILE.name} (Stripe ids are kept)."

    def handle(self, *args, **options):
        changed = plans_sync()
        self.stdout.write(self.style.SUCCESS(f"{changed} plans and packs now match {PLANS_FILE}."))
        self.stdout.write("Run `manage.py sync_stripe` next if prices changed.")
