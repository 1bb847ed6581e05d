"""htmx helpers: render a page or one of its partials, redirect the htmx way."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django_htmx.http import HttpResponseClientRedirect


def render_page(
    request: HttpRequest, template: str, context: dict, *, partial: str | None = None, status: int = 200
) -> HttpResponse:
    """Render the whole page, or only `template#partial` for a non-boosted htmx request."""
    htmx = getattr(request, "htmx", None)
    if partial and htmx and not htmx.boosted:
        template = f"{template}#{partial}"
    return render(request, template, context, status=status)


def redirect_after_post(request: HttpRequest, url: str) -> HttpResponse:
    """After a successful POST: HX-Redirect for htmx, a plain 302 otherwise."""
    htmx = getattr(request, "htmx", None)
    if htmx and not htmx.boosted:
        return HttpResponseClientRedirect(url)
    return redirect(url)
