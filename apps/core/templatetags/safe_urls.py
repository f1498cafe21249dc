"""`{{ url|http_url }}`: a URL a stranger gave us (a profile, an avatar, a post
link) goes into href/src only when it is absolute http(s); anything else
(javascript:, data:, vbscript:) renders as "" and the `{% if %}` around it hides
the link. Rows stored before the edge dropped such URLs are guarded too."""
from django import template

from apps.core.sanitize import http_url as _http_url

register = template.Library()


@register.filter
def http_url(value) -> str:
    return _http_url(value)
