"""A URL conf for the error-page test: the platform URLs plus one view that fails."""

from django.urls import path

from config.urls_public import urlpatterns as platform_urlpatterns


def failing_view(request):
    raise RuntimeError("secret internal detail: password=hunter2")


urlpatterns = [path("boom/", failing_view), *platform_urlpatterns]
