# The column is added with ALTER TABLE ... ADD COLUMN on both databases: Django's SQLite schema
# editor would rebuild the table for a NOT NULL column, and renaming the rebuilt table fails
# while the version triggers of the other tables (clients.versions) name it.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('clients', '0013_mtls_client_authentication'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    'ALTER TABLE "clients_registrystate" ADD COLUMN "lockouts_until" double precision '
                    'NOT NULL DEFAULT 0',
                    reverse_sql='ALTER TABLE "clients_registrystate" DROP COLUMN "lockouts_until"',
                ),
            ],
            state_operations=[
                migrations.AddField(
                    model_name='registrystate',
                    name='lockouts_until',
                    field=models.FloatField(db_default=0.0),
                ),
            ],
        ),
    ]
