"""Refuses a query string holding a NUL (%00) before any view runs: PostgreSQL
cannot compare text with NUL (a 500 wherever such a value reached a query), and
no parameter of the project means anything with one. 400, JSON under /api/."""
from django.http import HttpResponseBadRequest, JsonResponse, QueryDict

from .sanitize import text_clean

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


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class CleanFormTextMiddleware:
    """A page's form post: NUL and lone surrogates in a field (or its name) become
    U+FFFD before any view runs. PostgreSQL stores neither in text nor in jsonb, so
    each service that saved or audited such a value answered 500; strangers' text is
    already cleaned this way (apps/core/sanitize.py). The API refuses them instead
    (its JSON parser, DRF's CharField); push deliveries are the providers' to clean."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (request.method == "POST" and request.content_type in FORM_TYPES
                and not request.path.startswith(("/api/", "/hooks/"))):
            post = request.POST
            if any(text_clean(key) != key or any(text_clean(v) != v for v in values) for key, values in post.lists()):
                cleaned = QueryDict(mutable=True)
                for key, values in post.lists():
                    cleaned.setlist(text_clean(key), [text_clean(v) for v in values])
                cleaned._mutable = False
                request.POST = cleaned
        return self.get_response(request)
