"""The REST API (/api/v1/) and its schema; each app contributes its endpoints from api.py."""

urlpatterns: list = []
