# The column is added with ALTER TABLE ... ADD COLUMN on both databases: Django's SQLite schema
# editor would rebuild the table for a NOT NULL column, and renaming the rebuilt table fails
# once the version triggers of migration 0006's first migrate name it (an upgrade from 0006).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('clients', '0006_registry_state'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    'ALTER TABLE "clients_registrystate" ADD COLUMN "keys_version" bigint NOT NULL DEFAULT 0',
                    reverse_sql='ALTER TABLE "clients_registrystate" DROP COLUMN "keys_version"',
                ),
            ],
            state_operations=[
                migrations.AddField(
                    model_name='registrystate',
                    name='keys_version',
                    field=models.BigIntegerField(default=0),
                ),
            ],
        ),
    ]
