"""API errors: business-rule refusals become 400 with a readable message."""

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.exceptions import ApplicationError
from apps.governance.rules import RulesetError


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        body = {"detail": exc.message}
        if exc.field:
            body["field"] = exc.field
        # A refused rule or ruleset lists every problem with its path (`rules[2].condition`, `test:<name>`).
        if isinstance(exc, RulesetError):
            body["errors"] = exc.errors
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)
