"""``/api/``: the REST API (``api/urls.py`` mounts every app's endpoints under ``/api/v1/``)."""

from api.urls import urlpatterns  # noqa: F401
