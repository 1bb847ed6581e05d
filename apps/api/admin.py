"""API tokens are credentials: nobody reads them in the Django admin (people obtain their own)."""

from django.contrib import admin
from rest_framework.authtoken.models import TokenProxy

# apps.api is installed after rest_framework.authtoken, whose admin registered this.
admin.site.unregister(TokenProxy)
