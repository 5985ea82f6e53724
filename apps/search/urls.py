from django.urls import path

from apps.search.views import SearchApi

urlpatterns = [path("search", SearchApi.as_view(), name="search")]
