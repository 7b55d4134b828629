"""Public endpoints that mail links to (no login: the signed token is the authority)."""

from django.urls import path

from buzon.outbound import views

app_name = "outbound"

urlpatterns = [
    path("o/<str:token>.gif", views.pixel, name="pixel"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("confirm-sender/<str:token>/", views.confirm_sender, name="confirm-sender"),
]
