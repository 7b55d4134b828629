"""WSGI entry point (`buzon web` serves it; an outside WSGI server may import it too)."""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from buzon.core import config

# As the `buzon` command does: files this process creates (the SQLite database, its -wal/-shm
# files) are the owner's alone, and what an older version left readable is fixed at start.
os.umask(config.UMASK)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "buzon.settings")
application = get_wsgi_application()
config.secure_data_dir(settings.DATA_DIR)
