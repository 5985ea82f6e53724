from __future__ import annotations

from rest_framework import serializers


class ModelObjectSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="model")
    created = serializers.IntegerField()
    owned_by = serializers.CharField()


class ModelListSerializer(serializers.Serializer):
    object = serializers.CharField(default="list")
    data = ModelObjectSerializer(many=True)
