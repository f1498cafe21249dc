"""The favicon: a small SVG in static/, linked from every page of base.html, and /favicon.ico
(asked for by browsers on pages without the link: the API docs, the admin) answered with a
redirect to it instead of a 404 in the logs."""
import logging
import xml.etree.ElementTree as ET

import pytest
from django.contrib.staticfiles import finders
from django.templatetags.static import static
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_the_icon_is_a_small_svg_linked_from_the_pages(client, agent):
    path = finders.find("favicon.svg")
    assert path, "static/favicon.svg"
    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("viewBox")
    assert len(open(path, "rb").read()) < 2048
    link = f'<link rel="icon" href="{static("favicon.svg")}" type="image/svg+xml">'
    assert link in client.get(reverse("login")).content.decode()
    client.force_login(agent)
    assert 'rel="icon"' in client.get(reverse("inbox:list")).content.decode()


def test_favicon_ico_redirects_to_the_icon_without_a_404(client, caplog):
    with caplog.at_level(logging.WARNING):
        resp = client.get("/favicon.ico")
    assert resp.status_code == 301 and resp["Location"].endswith("/favicon.svg")
    assert "max-age=86400" in resp["Cache-Control"]
    assert not [r for r in caplog.records if "Not Found" in r.getMessage()]
