from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('clients', '0006_registry_state'),
    ]

    operations = [
        migrations.AddField(
            model_name='registrystate',
            name='keys_version',
            field=models.BigIntegerField(default=0),
        ),
    ]
