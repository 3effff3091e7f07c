# A minimal Django site for examples/django-site.ts: Django's auth and sessions apps on one SQLite
# file. Run with Debian's python3-django (3.2), as manage.py would run them:
#
#   DJANGO_DATABASE=./db.sqlite3 DJANGO_SECRET_KEY=... python3 examples/django/site.py init
#   ... python3 examples/django/site.py login alice      prints the session key Django issued
#   ... python3 examples/django/site.py whoami KEY       prints who Django finds in that session
import os
import sys

import django
from django.conf import settings

settings.configure(
    SECRET_KEY=os.environ["DJANGO_SECRET_KEY"],
    USE_TZ=True,
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["DJANGO_DATABASE"]}},
)
django.setup()

from django.contrib.auth import get_user  # noqa: E402
from django.contrib.auth.models import Permission, User  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.http import HttpRequest  # noqa: E402
from django.test import Client  # noqa: E402

command, *args = sys.argv[1:]
if command == "init":
    call_command("migrate", verbosity=0)
    alice = User.objects.create_user("alice", "alice@example.org", "alice's django password")
    alice.user_permissions.add(Permission.objects.get(codename="view_user"))
elif command == "login":
    client = Client()
    assert client.login(username=args[0], password="alice's django password")
    print(client.cookies[settings.SESSION_COOKIE_NAME].value)
elif command == "whoami":
    request = HttpRequest()
    request.session = SessionStore(args[0])
    user = get_user(request)
    print(user.username if user.is_authenticated else "anonymous")
