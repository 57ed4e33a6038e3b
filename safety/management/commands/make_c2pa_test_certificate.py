from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from safety.credentials import make_test_certificate


class Command(BaseCommand):
    help = (
        "Create a development CA and C2PA signing certificate (valid signatures, trusted nowhere else) and print "
        "the settings that enable content credentials. Production needs a certificate from a CA on the C2PA trust list."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dir", default=str(settings.DATA_DIR / "c2pa"), help="where to write the PEM files")

    def handle(self, *args, **options):
        chain, key = make_test_certificate(Path(options["dir"]))
        self.stdout.write(f"export FRAMECAST_C2PA_CERT_FILE={chain}\nexport FRAMECAST_C2PA_KEY_FILE={key}\n")
