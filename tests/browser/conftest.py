"""Browser tests run against pytest-django's live server."""

from django.test import testcases

# The portal's MEDIA_URL is None (patient images are never served by URL), and Django's live
# server wraps the site in a media handler built from it: urlparse(None) is bytes and every
# request fails. Point that handler at a path nothing uses; applied at collection, before any
# live server of the session starts (tests/api/conftest.py does the same).
testcases._MediaFilesHandler.get_base_url = lambda self: "/__media-is-never-served-by-url__/"
