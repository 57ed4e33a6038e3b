import accounts.models
import core.crypto
from django.db import migrations, models


def _rewrite(schema_editor, change) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT id, webhook_secret FROM accounts_team")
        for team_id, stored in cursor.fetchall():
            cursor.execute("UPDATE accounts_team SET webhook_secret = %s WHERE id = %s", [change(stored), team_id])


def encrypt_secrets(apps, schema_editor):
    _rewrite(schema_editor, lambda stored: stored if stored.startswith(core.crypto.PREFIX) else core.crypto.encrypt(stored))


def decrypt_secrets(apps, schema_editor):
    _rewrite(schema_editor, core.crypto.decrypt)


class Migration(migrations.Migration):
    """The signing secret is kept encrypted, in the same column (read through
    Team.webhook_secret)."""

    dependencies = [
        ("accounts", "0003_team_webhook_secret"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="team", name="webhook_secret"),
                migrations.AddField(
                    model_name="team",
                    name="webhook_secret_stored",
                    field=models.TextField(db_column="webhook_secret", default=accounts.models.new_webhook_secret_stored),
                ),
            ],
            database_operations=[
                migrations.AlterField(
                    model_name="team",
                    name="webhook_secret",
                    field=models.TextField(default=accounts.models.new_webhook_secret_stored),
                ),
            ],
        ),
        migrations.RunPython(encrypt_secrets, decrypt_secrets),
    ]
