from django.urls import include, path

urlpatterns = [
    path("", include("orchestration.api")),
    path("", include("cleanup.api")),
]
