"""Sign in, sign out, set a password from an invitation link, and route to the right portal."""

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy

from .access import client_membership_of, is_platform_admin, partner_membership_of
from .decorators import AuthenticatedRequest
from .forms import EmailAuthenticationForm, StyledSetPasswordForm
from .models import VendorRole


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass


class SetPasswordView(auth_views.PasswordResetConfirmView):
    """Invitation and reset links: valid once, for PASSWORD_RESET_TIMEOUT."""

    template_name = "accounts/set_password.html"
    form_class = StyledSetPasswordForm
    success_url = reverse_lazy("accounts:set_password_done")
    post_reset_login = False


class SetPasswordDoneView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/set_password_done.html"


@login_required
def after_login(request: AuthenticatedRequest) -> HttpResponse:
    """Send a signed-in person to the portal their role opens."""
    user = request.user
    client = getattr(request, "tenant", None)
    if client is not None:
        if client_membership_of(user, client) is not None:
            return redirect("dashboard:home")
    elif is_platform_admin(user):
        return redirect("superadmin:home")
    elif user.vendor_role == VendorRole.SUPPORT:
        return redirect("admin:index")
    elif partner_membership_of(user) is not None:
        return redirect("management:home")
    # Signed in, but nothing to open on this host (e.g. a client user on the platform host).
    hosts = [m.client for m in user.client_memberships.select_related("client")] if client is None else []
    return render(request, "accounts/no_access.html", {"client_hosts": hosts}, status=403)
