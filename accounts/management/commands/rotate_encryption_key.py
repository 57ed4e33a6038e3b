"""Re-encrypt every stored secret with the first of FRAMECAST_ENCRYPTION_KEYS (core.crypto),
after which the older keys may be dropped from the setting."""

from django.core.management.base import BaseCommand
from django.db import transaction

from core import crypto


class Command(BaseCommand):
    help = "Re-encrypt stored secrets (team webhook signing secrets) with the newest encryption key."

    def handle(self, *args, **options):
        from accounts.models import Team

        count = 0
        with transaction.atomic():
            for team in Team.objects.select_for_update().only("pk", "webhook_secret"):
                # Reading decrypts with any key; the raw update writes under the first one.
                Team.objects.filter(pk=team.pk).update(webhook_secret=crypto.encrypt(team.webhook_secret))
                count += 1
        self.stdout.write(f"Re-encrypted the webhook secrets of {count} team(s) with the newest key.")
