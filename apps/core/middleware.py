"""Refuses a query string holding a NUL (%00) before any view runs: PostgreSQL
cannot compare text with NUL (a 500 wherever such a value reached a query), and
no parameter of the project means anything with one. 400, JSON under /api/."""
from django.http import HttpResponseBadRequest, JsonResponse

MESSAGE = "A query parameter holds a NUL character (%00)."


class RefuseNulQueryMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "%00" in request.META.get("QUERY_STRING", "") or any(
                "\x00" in key or "\x00" in value for key, values in request.GET.lists() for value in values):
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": MESSAGE}, status=400)
            return HttpResponseBadRequest(MESSAGE, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
