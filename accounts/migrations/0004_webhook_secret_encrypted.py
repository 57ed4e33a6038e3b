import accounts.models
import core.crypto
from django.db import migrations


def _rewrite(schema_editor, change) -> None:
    # Raw SQL: the field itself would encrypt on save and decrypt on load.
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT id, webhook_secret FROM accounts_team")
        for team_id, stored in cursor.fetchall():
            cursor.execute("UPDATE accounts_team SET webhook_secret = %s WHERE id = %s", [change(stored), team_id])


def encrypt_secrets(apps, schema_editor):
    _rewrite(schema_editor, lambda stored: stored if stored.startswith(core.crypto.PREFIX) else core.crypto.encrypt(stored))


def decrypt_secrets(apps, schema_editor):
    _rewrite(schema_editor, core.crypto.decrypt)


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0003_team_webhook_secret"),
    ]

    operations = [
        migrations.AlterField(
            model_name="team",
            name="webhook_secret",
            field=core.crypto.EncryptedTextField(default=accounts.models.new_webhook_secret),
        ),
        migrations.RunPython(encrypt_secrets, decrypt_secrets),
    ]
