# A Django site's database for test/DjangoSchema.test.ts, made and questioned by real Django
# (Debian's python3-django). Reads one JSON command on stdin, prints one JSON answer:
#
#   {"action": "seed", "db": ...}    migrate, then users, groups and permissions through the ORM
#   {"action": "ask", "db": ..., "logins": [[username, password], ...], "perms": [...], "apps": [...]}
#       what Django's authenticate(), has_perm, get_*_permissions and has_module_perms answer,
#       inside a transaction rolled back (a login would re-hash legacy hashes)
#   {"action": "read", "db": ..., "users": [...], "passwords": {...}, "perms": [...], "since": iso}
#       rows effect-auth wrote, as Django reads them: the hash's algorithm and iterations and whether
#       Django would re-hash it at a login (must_update), check_password, has_perm, ordering and
#       filtering on the timestamps
#   {"action": "schema", "db": ...}  a dump of the schema, to compare before and after
#   {"action": "login", "db": ..., "username", "password", "data"?}  Django's test Client logs in
#       (then puts "data" in the session): the key
#   (any action takes "settings": overrides of the site's settings)
#   {"action": "relogin", "db": ..., "key", "username", "password"}  Django's login() over that
#       session (its login form posted with the session cookie): the key it ends under
#   {"action": "anonymous", "db": ..., "data"}  an anonymous session holding "data" (a cart): the key
#   {"action": "anonymous_json", "db": ..., "json"}  the same, the data as JSON text Python reads
#       (floats, big ints and key order as Python keeps them): the key
#   {"action": "anonymous_python", "db": ..., "python"}  the same, the data as a Python literal
#       (ast.literal_eval): tuples, dicts with int keys, floats such as 1.0, ints past 2^64: the key
#   {"action": "rawsession", "db": ..., "key"}  the session's data as Python holds it: each value's
#       repr and type name, the keys' order, and the user id get_user() finds
#   {"action": "whoami", "db": ..., "key"}  the user id Django's get_user() finds for a session key,
#       the key the session ends under, and the session's data without Django's auth keys
#   {"action": "logout", "db": ..., "key"}  Django's logout() on that session
#   {"action": "cookie", "db": ..., "key"}  the session cookie Django's SessionMiddleware sends once a
#       view wrote the session: its max-age and expires ("" for a cookie that ends with the
#       browser), and get_expire_at_browser_close() and get_expiry_age() (the session is saved)
#   {"action": "save", "db": ..., "key", "data", "expiry"?}  a view putting "data" in the session (a
#       flash message), after set_expiry("expiry") if given ({"in": seconds} is a timedelta), then
#       saving it: Django's save sets expire_date anew. The expire_date written
#   {"action": "setpassword", "db": ..., "username", "password"}  set_password() and save()
#   {"action": "validate", "db": ..., "username", "passwords": [...]}  validate_password() of each
#       password for that user, under the site's AUTH_PASSWORD_VALIDATORS (Django's default: none;
#       give them in "settings"): the messages of each, [] for a password it accepts
#   {"action": "signing", "db": ..., "ours": signed, "value": v}  Django's loads() of ours, its dumps() of v
#   {"action": "remoteuser", "db": ..., "names": [...]}  Django's RemoteUserBackend.authenticate() of
#       each name in turn (creating unknown users, as by default): the user ids, null for none
#   {"action": "replace_group", "db": ..., "name", "members": [username, ...]}  Django deletes the
#       group of that name (Group.delete(), which deletes what references it), then makes a new
#       group of the same name holding "members": its id, and the groups left to each user
#   {"action": "model_perms", "db": ..., "content_types": ["app_label.model", ...]}  each model's
#       permissions as guardian's ObjectPermissionChecker gives them to a superuser
#       (Permission.objects.filter(content_type=ctype)), "app_label.codename", sorted
#   {"action": "custom_seed", "db": ..., "user_model", "users": [{"fields", "password"?, "perms"?}, ...]}
#       on a custom user model (test/django/accounts, AUTH_USER_MODEL = "accounts.<user_model>"):
#       migrate, make the model's tables as its migration would (the schema editor), create the
#       users through the ORM (a password hashed by make_password, "app_label.codename" permissions
#       granted): their pks, as text
#   {"action": "custom_ask", "db": ..., "user_model", "logins": [[username, password], ...]}
#       what authenticate() answers (pks as text) and, for every user, get_username(), the row's
#       username and email, inside a transaction rolled back
#
# "db" is {"engine": "sqlite", "name": path} or {"engine": "pg", "name", "host", "port", "user"}.
import datetime
import json
import sys

import django
from django.conf import settings

command = json.load(sys.stdin)
db = command["db"]
if db["engine"] == "sqlite":
    database = {"ENGINE": "django.db.backends.sqlite3", "NAME": db["name"]}
else:
    database = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": db["name"],
        "HOST": db["host"],
        "PORT": db["port"],
        "USER": db["user"],
        "PASSWORD": db.get("password", ""),
    }

settings.configure(**{**dict(
    SECRET_KEY="django-site-secret",
    USE_TZ=True,
    TIME_ZONE="UTC",
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions"],
    DATABASES={"default": database},
    # This Django's defaults, plus the legacy hashers a site of its age may still hold (Django 5.1
    # removed SHA1PasswordHasher).
    PASSWORD_HASHERS=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    ]
    + (["django.contrib.auth.hashers.ScryptPasswordHasher"] if django.VERSION >= (4, 0) else [])
    + ["django.contrib.auth.hashers.MD5PasswordHasher"]
    + (["django.contrib.auth.hashers.SHA1PasswordHasher"] if django.VERSION < (5, 1) else []),
), **(dict(
    # a custom user model's app, its tables made by custom_seed (it has no migrations)
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions", "accounts"],
    AUTH_USER_MODEL="accounts." + command["user_model"],
    MIGRATION_MODULES={"accounts": None},
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
) if "user_model" in command else {}),
    # e.g. {"DEFAULT_HASHING_ALGORITHM": "sha1"}: a 3.1/3.2 site in its transition setting
    **command.get("settings", {})})
django.setup()

from django.contrib.auth import authenticate  # noqa: E402
from django.contrib.auth.hashers import PBKDF2PasswordHasher, get_hasher, identify_hasher, make_password  # noqa: E402
from django.contrib.auth.models import Group, Permission, User  # noqa: E402
from django.contrib.contenttypes.models import ContentType  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

# The seeded users: name, password, how the hash is made, flags.
USERS = [
    ("alice", "alice-pw-1", "pbkdf2_sha256", {}),
    ("old", "old-pw-2", "pbkdf2_old", {}),
    ("sha1pbkdf", "sha1-pw-3", "pbkdf2_sha1", {}),
    ("argon", "argon-pw-4", "argon2", {}),
    ("bcrypt", "bcrypt-pw-5", "bcrypt_sha256", {}),
    ("md5", "md5-pw-6", "md5", {}),
    ("sha1", "sha1-pw-7", "sha1", {}) if django.VERSION < (5, 1) else ("scrypt", "scrypt-pw-7", "scrypt", {}),
    ("inactive", "inactive-pw-8", "pbkdf2_sha256", {"is_active": False}),
    ("unusable", None, "unusable", {}),
    ("root", "root-pw-9", "pbkdf2_sha256", {"is_superuser": True, "is_staff": True}),
    ("old-root", "old-root-pw", "pbkdf2_sha256", {"is_superuser": True, "is_active": False}),
    ("editor", "editor-pw-10", "pbkdf2_sha256", {}),
    ("jos\u00e9", "jose-pw-11", "pbkdf2_sha256", {}),
    # Stored unnormalised (Django's create() does not normalise; create_user() does), beside
    # the name it normalises to: Django reaches each by its exact spelling only.
    ("\ufb01le", "ligature-pw-12", "pbkdf2_sha256", {}),
    ("file", "file-pw-13", "pbkdf2_sha256", {}),
]


def hashed(password, how):
    if how == "unusable":
        return make_password(None)
    if how == "pbkdf2_old":
        return PBKDF2PasswordHasher().encode(password, "oldsaltoldsalt", iterations=100000)
    return make_password(password, hasher=how)


def seed():
    call_command("migrate", verbosity=0)
    blog = ContentType.objects.create(app_label="blog", model="post")
    for codename in ["publish_post", "feature_post"]:
        Permission.objects.create(content_type=blog, codename=codename, name="Can " + codename.replace("_", " "))
    editors = Group.objects.create(name="editors")
    editors.permissions.set(Permission.objects.filter(codename__in=["publish_post", "view_user"]))
    auditors = Group.objects.create(name="auditors")
    auditors.permissions.set(Permission.objects.filter(codename__in=["view_group", "view_permission"]))
    last_login = datetime.datetime(2030, 1, 1, 12, 0, 0, 250000, tzinfo=datetime.timezone.utc)
    for name, password, how, flags in USERS:
        user = User.objects.create(username=name, password=hashed(password, how), **flags)
        if name == "editor":
            user.groups.set([editors, auditors])
            user.user_permissions.set(Permission.objects.filter(codename__in=["feature_post", "add_user"]))
        if name == "inactive":
            user.groups.set([editors])
            user.user_permissions.set(Permission.objects.filter(codename="add_user"))
        if name == "alice":
            user.last_login = last_login
            user.save(update_fields=["last_login"])
    return {"users": [{"username": n, "password": p} for n, p, _, _ in USERS]}


def ask():
    with transaction.atomic():
        out = {"logins": [], "users": {}}
        for username, password in command["logins"]:
            user = authenticate(username=username, password=password)
            out["logins"].append(None if user is None else user.pk)
        for user in User.objects.order_by("pk"):
            out["users"][user.username] = {
                "id": user.pk,
                "all": sorted(user.get_all_permissions()),
                "user": sorted(user.get_user_permissions()),
                "group": sorted(user.get_group_permissions()),
                "perms": [p for p in command["perms"] if user.has_perm(p)],
                "apps": [a for a in command["apps"] if user.has_module_perms(a)],
            }
        out["permissions"] = sorted(
            "%s.%s" % (p.content_type.app_label, p.codename) for p in Permission.objects.select_related("content_type")
        )
        transaction.set_rollback(True)
    return out


def must_update(encoded):
    # check_password's test (before its setter re-hashes): another algorithm than the preferred
    # one, or the preferred one's must_update (PBKDF2: other iterations)
    preferred = get_hasher("default")
    hasher = identify_hasher(encoded)
    return hasher.algorithm != preferred.algorithm or preferred.must_update(encoded)


def read():
    out = {"users": {}}
    for name in command["users"]:
        user = User.objects.get(username=name)
        out["users"][name] = {
            "id": user.pk,
            # read before check_password, which re-hashes such a password
            "hash": "$".join(user.password.split("$")[:2]),
            "must_update": must_update(user.password) if user.has_usable_password() else None,
            "password": user.check_password(command["passwords"][name]) if name in command["passwords"] else None,
            "perms": [p for p in command["perms"] if user.has_perm(p)],
            "groups": sorted(g.name for g in user.groups.all()),
            "is_active": user.is_active,
            "date_joined": user.date_joined.isoformat(),
            "last_login": None if user.last_login is None else user.last_login.isoformat(),
        }
    since = datetime.datetime.fromisoformat(command["since"].replace("Z", "+00:00"))
    out["byLastLogin"] = list(
        User.objects.filter(last_login__isnull=False).order_by("last_login").values_list("username", flat=True)
    )
    out["loggedInSince"] = sorted(User.objects.filter(last_login__gte=since).values_list("username", flat=True))
    out["byDateJoined"] = list(User.objects.order_by("date_joined", "pk").values_list("username", flat=True))
    out["joinedSince"] = sorted(User.objects.filter(date_joined__gte=since).values_list("username", flat=True))
    return out


def schema():
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
            rows = cursor.fetchall()
            cursor.execute("PRAGMA journal_mode")
            rows.append(("journal_mode", cursor.fetchone()[0], "", ""))
        else:
            cursor.execute(
                "SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns"
                " WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
            )
            rows = cursor.fetchall()
            cursor.execute("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2")
            rows += cursor.fetchall()
            cursor.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
            )
            rows += cursor.fetchall()
    return [list(row) for row in rows]


def session_request(key):
    from importlib import import_module

    from django.http import HttpRequest

    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(key)
    return request


def login():
    from django.test import Client

    client = Client()
    assert client.login(username=command["username"], password=command["password"])
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    if "data" in command:
        request = session_request(key)
        request.session.update(command["data"])
        request.session.save()
    return {"key": key}


def relogin():
    # Django's login() over an existing session (its login form posted with the session cookie):
    # a session of the same user and password hash is kept as it is, under its key.
    from django.contrib.auth import authenticate
    from django.contrib.auth import login as django_login

    request = session_request(command["key"])
    user = authenticate(request, username=command["username"], password=command["password"])
    assert user is not None
    django_login(request, user)
    request.session.save()
    return {"key": request.session.session_key}


def anonymous():
    request = session_request(None)
    request.session.update(command["data"])
    request.session.save()
    return {"key": request.session.session_key}


def anonymous_json():
    # As anonymous, the data given as JSON text that Python's json reads: floats stay floats
    # (10.0, 1e16), big ints stay exact, keys keep their order.
    request = session_request(None)
    request.session.update(json.loads(command["json"]))
    request.session.save()
    return {"key": request.session.session_key}


def anonymous_python():
    # As anonymous, the data given as a Python literal, for what JSON cannot say (tuples, int keys).
    import ast

    request = session_request(None)
    request.session.update(ast.literal_eval(command["python"]))
    request.session.save()
    return {"key": request.session.session_key}


def rawsession():
    # The session's data as Python holds it: each value's repr, its type and the keys' order; and
    # the user id get_user() finds.
    from django.contrib.auth import get_user

    request = session_request(command["key"])
    data = dict(request.session.items())
    return {
        "id": get_user(request).pk,
        "repr": {k: repr(v) for k, v in data.items()},
        "types": {k: type(v).__name__ for k, v in data.items()},
        "order": list(data.keys()),
    }


def remoteuser():
    from django.contrib.auth.backends import RemoteUserBackend
    backend = RemoteUserBackend()
    return {"ids": [getattr(backend.authenticate(None, remote_user=name), "pk", None) for name in command["names"]]}


def whoami():
    from django.contrib.auth import get_user

    request = session_request(command["key"])
    data = dict(request.session.items())
    user = get_user(request)
    if user.pk is None and command.get("debug"):
        u = User.objects.filter(pk=data.get("_auth_user_id")).first()
        sys.stderr.write("DEBUG %r %r\n" % (data, u and u.get_session_auth_hash()))
    # Django 5.x moves a session verified by a fallback secret to a new key (cycle_key): the
    # browser would get it in the response's cookie.
    mine = {k: v for k, v in data.items() if not k.startswith("_auth_user_") and k != "_effect_auth"}
    return {"id": user.pk, "key": request.session.session_key, "data": mine}


def save():
    from django.contrib.sessions.models import Session

    request = session_request(command["key"])
    request.session.update(command["data"])
    if "expiry" in command:
        expiry = command["expiry"]
        request.session.set_expiry(datetime.timedelta(seconds=expiry["in"]) if isinstance(expiry, dict) else expiry)
    request.session.save()
    return {"expire_date": Session.objects.get(session_key=command["key"]).expire_date.isoformat()}


def cookie():
    from django.contrib.sessions.middleware import SessionMiddleware
    from django.http import HttpResponse

    request = session_request(command["key"])
    request.COOKIES[settings.SESSION_COOKIE_NAME] = command["key"]
    request.session.modified = True
    response = SessionMiddleware(lambda r: HttpResponse()).process_response(request, HttpResponse())
    morsel = response.cookies[settings.SESSION_COOKIE_NAME]
    return {
        "max_age": morsel["max-age"],
        "expires": morsel["expires"],
        "browser_close": request.session.get_expire_at_browser_close(),
        "age": request.session.get_expiry_age(),
    }


def logout():
    from django.contrib.auth import logout as django_logout

    request = session_request(command["key"])
    from django.contrib.auth import get_user

    request.user = get_user(request)
    django_logout(request)
    return {}


def setpassword():
    user = User.objects.get(username=command["username"])
    user.set_password(command["password"])
    user.save()
    return {}


def signing():
    from django.contrib.sessions.backends.db import SessionStore
    from django.core import signing as django_signing

    salt = "django.contrib.sessions.SessionStore"
    try:
        theirs_of_ours = django_signing.loads(command["ours"], salt=salt)
    except django_signing.BadSignature:
        theirs_of_ours = "BadSignature"
    return {
        "loads": theirs_of_ours,
        "session": SessionStore().decode(command["ours"]),
        "dumps": SessionStore().encode(command["value"]),
    }


def custom_seed():
    from django.contrib.auth import get_user_model

    call_command("migrate", verbosity=0)
    model = get_user_model()
    # What the model's migration (CreateModel) runs: the table and its link tables.
    with connection.schema_editor() as editor:
        editor.create_model(model)
    pks = []
    for user in command["users"]:
        password = user.get("password")
        made = model.objects.create(password=make_password(password), **user["fields"])
        for perm in user.get("perms", []):
            app_label, codename = perm.split(".", 1)
            made.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        pks.append(str(made.pk))
    return {"pks": pks}


def validate():
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    user = User.objects.get(username=command["username"])
    out = []
    for password in command["passwords"]:
        try:
            validate_password(password, user)
            out.append([])
        except ValidationError as error:
            out.append(list(error.messages))
    return {"messages": out}


def custom_ask():
    from django.contrib.auth import get_user_model

    model = get_user_model()
    with transaction.atomic():
        out = {"logins": [], "users": []}
        for username, password in command["logins"]:
            user = authenticate(username=username, password=password)
            out["logins"].append(None if user is None else str(user.pk))
        for user in model.objects.order_by("pk"):
            out["users"].append({
                "pk": str(user.pk),
                "get_username": user.get_username(),
                "username": getattr(user, "username", None),
                "email": user.email,
            })
        transaction.set_rollback(True)
    return out


def replace_group():
    Group.objects.get(name=command["name"]).delete()
    group = Group.objects.create(name=command["name"])
    group.user_set.set(User.objects.filter(username__in=command["members"]))
    return {
        "id": group.pk,
        "groups": {u.username: sorted(g.name for g in u.groups.all()) for u in User.objects.order_by("pk")},
    }


def model_perms():
    out = {}
    for content_type in command["content_types"]:
        app_label, model = content_type.split(".")
        ctype = ContentType.objects.filter(app_label=app_label, model=model).first()
        codenames = Permission.objects.filter(content_type=ctype).values_list("codename", flat=True) if ctype else []
        out[content_type] = sorted(app_label + "." + codename for codename in codenames)
    return out


actions = {
    "seed": seed, "ask": ask, "read": read, "schema": schema, "login": login, "anonymous": anonymous, "whoami": whoami,
    "logout": logout, "cookie": cookie, "save": save, "setpassword": setpassword, "signing": signing, "anonymous_json": anonymous_json,
    "rawsession": rawsession, "anonymous_python": anonymous_python, "remoteuser": remoteuser,
    "custom_seed": custom_seed, "custom_ask": custom_ask, "replace_group": replace_group, "validate": validate,
    "model_perms": model_perms, "relogin": relogin,
}
if command["action"] == "version":
    print(json.dumps({"version": "%d.%d" % django.VERSION[:2]}))
else:
    print(json.dumps(actions[command["action"]]()))
