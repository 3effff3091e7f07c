# Custom user models (AUTH_USER_MODEL = "accounts.<name>") for test/DjangoSchema.test.ts: site.py
# installs this app only when a command names one ("user_model"), and only that model is defined.
import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models

which = settings.AUTH_USER_MODEL.split(".")[1]

if which == "NullNamesAccount":
    # Text columns that allow NULL: the admin saves a blank email as NULL here (a unique email
    # must not be "" twice), and code may leave the names None.
    class NullNamesAccount(AbstractUser):
        first_name = models.CharField(max_length=150, blank=True, null=True)
        last_name = models.CharField(max_length=150, blank=True, null=True)
        email = models.EmailField(unique=True, null=True, blank=True)
elif which == "UuidAccount":
    # A UUID primary key: no integer user id to give the store's users.
    class UuidAccount(AbstractUser):
        id = models.UUIDField(primary_key=True, default=uuid.uuid4)
elif which == "EmailAccount":
    # Logs in by email, and keeps AbstractUser's username (required, unique) beside it.
    class EmailAccount(AbstractUser):
        email = models.EmailField(unique=True)
        USERNAME_FIELD = "email"
        REQUIRED_FIELDS = ["username"]
elif which == "EmailOnlyAccount":
    # Logs in by email, and has no username column at all.
    class EmailOnlyAccount(AbstractUser):
        username = None
        email = models.EmailField(unique=True)
        USERNAME_FIELD = "email"
        REQUIRED_FIELDS = []
elif which == "BigAccount":
    # BigAutoField, what startapp's DEFAULT_AUTO_FIELD gives a new app's models: 64-bit ids.
    class BigAccount(AbstractUser):
        id = models.BigAutoField(primary_key=True)
