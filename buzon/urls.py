from django.urls import include, path

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/", include("buzon.api.urls")),
    path("", include("buzon.outbound.urls")),
    path("", include("buzon.web.urls")),
]
