from django.urls import path

from apps.usage.views import UsageApi

urlpatterns = [path("usage", UsageApi.as_view(), name="usage")]
