from django.urls import include, path

urlpatterns = [
    path("", include("orchestration.api")),
    path("", include("cleanup.api")),
    path("", include("quality.api")),  # issue 12: quarantined rows, masked by clearance
    path("", include("security.api")),  # issue 12: the data classification
]
urlpatterns += [path("", include("lineage.api"))]  # issue 13: /api/v1/lineage/graph
