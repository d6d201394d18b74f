from django.urls import include, path

urlpatterns = [
    path("", include("orchestration.api")),
    path("", include("cleanup.api")),
]
urlpatterns += [path("", include("lineage.api"))]  # issue 13: /api/v1/lineage/graph
