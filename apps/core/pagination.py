"""Cursor pagination over the id, newest first. A cursor the client altered is a
400 {"detail": ...}: DRF answers 404 for one it cannot decode and passes a decoded
but non-numeric position straight to the query (a 500)."""
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.pagination import CursorPagination

INVALID = "Invalid cursor: use the `next` or `previous` link as given."


class NewestFirstCursor(CursorPagination):
    ordering = "-id"

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise ParseError(INVALID) from None
        if cursor is not None and cursor.position is not None:
            position = cursor.position
            if not (position.isascii() and position.isdigit() and len(position) < 19):
                raise ParseError(INVALID)
        return cursor
