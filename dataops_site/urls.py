from django.contrib import admin
from django.urls import include, path

# The admin is discovered here, not at set-up (accounts.apps.DataOpsAdminConfig is a SimpleAdminConfig), and
# before the admin views below are imported, so every app's admin module loads in INSTALLED_APPS order as before:
# a process that never resolves a URL, as ``run_job``, imports none of them (issue 15).
admin.autodiscover()

from monitoring.admin import operations_view  # noqa: E402
from monitoring.views import feedback, metrics  # noqa: E402
from security.admin import classification_view  # noqa: E402

from .views import health  # noqa: E402

admin.site.site_header = "DataOps control plane"
admin.site.site_title = "DataOps"
admin.site.index_title = "Looker, BigQuery and Sheets estate"

urlpatterns = [
    path("admin/monitoring/operations/", admin.site.admin_view(operations_view), name="monitoring-operations"),
    path("admin/security/classification/", admin.site.admin_view(classification_view), name="security-classification"),
    path("admin/", admin.site.urls),
    path("metrics", metrics, name="metrics"),
    path("feedback/<str:label>/<str:object_id>/", feedback, name="monitoring-feedback"),
    path("api/", include("dataops_site.api_urls")),
    path("health/", health, name="health"),
]

# --- console (issue 11): "View site" leads home, one's time zone, the styled 403 page ---------------------------
from console.views import site_root, time_zone_set  # noqa: E402

urlpatterns += [
    path("", site_root, name="site-root"),
    path("console/timezone/", time_zone_set, name="console-timezone"),
]
handler403 = "console.views.permission_denied"
