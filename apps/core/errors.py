"""Domain errors and the API's error shape: always JSON {"detail": ...}."""
from django.core.exceptions import PermissionDenied, RequestDataTooBig, ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class DomainError(Exception):
    """A refused state change with a message meant for the user."""

    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class Conflict(DomainError):
    status_code = status.HTTP_409_CONFLICT


def _render_as_json(context) -> None:
    # Errors are JSON whatever the client asked for (?format=csv, Accept: text/html).
    request = context.get("request")
    if request is not None and getattr(getattr(request, "accepted_renderer", None), "format", None) != "json":
        from rest_framework.renderers import JSONRenderer

        request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"


def api_exception_handler(exc, context):
    _render_as_json(context)
    if isinstance(exc, DomainError):
        return Response({"detail": exc.detail}, status=exc.status_code)
    if isinstance(exc, ProtectedError):
        # A delete refused by on_delete=PROTECT is the user's conflict, not a server error.
        return Response({"detail": "This is still in use (conversations or messages refer to it); "
                                   "deactivate it instead."}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, RequestDataTooBig):
        # DRF reads request.body, where Django enforces DATA_UPLOAD_MAX_MEMORY_SIZE.
        return Response({"detail": "The request body is too large."},
                        status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail={"detail": exc.messages})
    response = exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if not (isinstance(data, dict) and "detail" in data):
        # field errors: keep them, under one detail key so clients read one shape.
        response.data = {"detail": data}
    return response


__all__ = ["DomainError", "Conflict", "api_exception_handler", "Http404", "PermissionDenied"]
