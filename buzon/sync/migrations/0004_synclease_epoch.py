from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("sync", "0003_raw_content_key"),
    ]

    operations = [
        migrations.AddField(
            model_name="synclease",
            name="epoch",
            field=models.PositiveBigIntegerField(default=0),
        ),
    ]
