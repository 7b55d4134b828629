"""Routes of /api/v1/: each context's viewsets register on the one router here."""

from rest_framework.routers import DefaultRouter

router = DefaultRouter()

urlpatterns = router.urls
