from django.contrib import admin
from django.urls import include, path

from monitoring.admin import operations_view
from monitoring.views import feedback, metrics

from .views import health

admin.site.site_header = "DataOps control plane"
admin.site.site_title = "DataOps"
admin.site.index_title = "Looker, BigQuery and Sheets estate"

urlpatterns = [
    path("admin/monitoring/operations/", admin.site.admin_view(operations_view), name="monitoring-operations"),
    path("admin/", admin.site.urls),
    path("metrics", metrics, name="metrics"),
    path("feedback/<str:label>/<str:object_id>/", feedback, name="monitoring-feedback"),
    path("api/", include("dataops_site.api_urls")),
    path("health/", health, name="health"),
]
