"""Global users (public schema) and their roles: vendor staff, partner teams, client users."""

from typing import ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone

from apps.core.models import TimeStampedModel


class VendorRole(models.TextChoices):
    PLATFORM_ADMIN = "platform_admin", "Platform admin"
    SUPPORT = "support", "Support"


class PartnerRole(models.TextChoices):
    PARTNER_ADMIN = "partner_admin", "Partner admin"
    PARTNER_ENGINEER = "partner_engineer", "Partner engineer"


class ClientRole(models.TextChoices):
    CLIENT_ADMIN = "client_admin", "Client admin"
    OPERATOR = "operator", "Operator"
    VIEWER = "viewer", "Viewer"


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra) -> "User":
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra) -> "User":
        extra.setdefault("vendor_role", VendorRole.PLATFORM_ADMIN)
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in with an email address; roles come from vendor_role and memberships."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    vendor_role = models.CharField(max_length=20, choices=VendorRole.choices, blank=True)
    is_active = models.BooleanField(default=True)
    # Django admin access; set for vendor staff only.
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email

    @property
    def display_name(self) -> str:
        return self.get_full_name()

    @property
    def is_platform_admin(self) -> bool:
        return self.is_active and self.vendor_role == VendorRole.PLATFORM_ADMIN


class PartnerMembership(TimeStampedModel):
    """A user's place in one partner's team (a person belongs to at most one partner)."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="partner_membership")
    partner = models.ForeignKey("tenancy.Partner", on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=PartnerRole.choices)

    class Meta:
        ordering = ["partner", "user__email"]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_role_display()} · {self.partner}"

    def get_additional_data(self) -> dict:
        return {"partner_id": self.partner_id}


class ClientMembership(TimeStampedModel):
    """A user's role in one client project (a person may belong to several clients)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="client_memberships")
    client = models.ForeignKey("tenancy.Client", on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=ClientRole.choices)

    class Meta:
        ordering = ["client", "user__email"]
        constraints = [
            models.UniqueConstraint(fields=["user", "client"], name="one_membership_per_client"),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_role_display()} · {self.client}"

    def get_additional_data(self) -> dict:
        return {"client_id": self.client_id}
