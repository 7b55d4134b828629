"""Tokens made before Buzón stored only hashes (DRF's authtoken table, in clear) keep working: each is
hashed into api.ApiToken, then the clear table is dropped, so the database no longer holds any token."""

import datetime

from django.db import migrations
from django.utils.dateparse import parse_datetime

OLD_TABLE = "authtoken_token"


def hash_old_tokens(apps, schema_editor):
    from knox.crypto import hash_token
    from knox.settings import CONSTANTS

    connection = schema_editor.connection
    if OLD_TABLE not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("api", "ApiToken")
    quoted = connection.ops.quote_name(OLD_TABLE)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {connection.ops.quote_name('key')}, user_id, created FROM {quoted}")  # noqa: S608  # nosec B608 (constant names)
        rows = cursor.fetchall()
    for key, user_id, created in rows:
        digest = hash_token(key)
        if not ApiToken.objects.filter(digest=digest).exists():
            token = ApiToken.objects.create(digest=digest, token_key=key[:CONSTANTS.TOKEN_KEY_LENGTH],
                                            user_id=user_id, expiry=None, name="API token (before hashing)")
            if isinstance(created, str):  # SQLite hands back text
                created = parse_datetime(created)
            if created is not None and created.tzinfo is None:
                created = created.replace(tzinfo=datetime.timezone.utc)
            ApiToken.objects.filter(pk=token.pk).update(created=created)  # auto_now_add ignores a given value
    if connection.vendor == "sqlite":  # overwrite the clear tokens' bytes, not only unlink their pages
        schema_editor.execute("PRAGMA secure_delete = ON")
        schema_editor.execute(f"DELETE FROM {quoted}")  # noqa: S608  # nosec B608 (constant names)
    schema_editor.execute(f"DROP TABLE {quoted}")
    schema_editor.execute("DELETE FROM django_migrations WHERE app = %s", ["authtoken"])


class Migration(migrations.Migration):

    dependencies = [
        ("api", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(hash_old_tokens, migrations.RunPython.noop),
    ]
