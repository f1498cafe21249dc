"""Websocket routes. Apps add their consumers here."""
websocket_urlpatterns = []
