# A session engine whose store class has a name of its own, as a site that subclasses Django's
# db store may have: Django salts the session data's signature with the class's __qualname__
# ("django.contrib.sessions.CustomStore"), so a reader must know that name. SESSION_ENGINE names
# this module (site.py's folder is on sys.path); Django looks its SessionStore attribute up.
from django.contrib.sessions.backends.db import SessionStore as DBStore


class CustomStore(DBStore):
    pass


SessionStore = CustomStore
