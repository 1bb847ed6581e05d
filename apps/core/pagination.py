"""Pagination helper for list pages."""

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest

DEFAULT_PAGE_SIZE = 25


def paginate(request: HttpRequest, queryset: QuerySet | list, *, per_page: int = DEFAULT_PAGE_SIZE) -> Page:
    """Page `queryset` by the `page` GET parameter; out-of-range or junk pages fall back safely."""
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))
