"""Fixtures the diagnosis tests share: a superuser, and a test models folder with one
version promoted over another."""

from __future__ import annotations

import pytest

from diagnosis import services
from diagnosis.models import ModelStatus, ModelVersion
from tests import factories
from tests.diagnosis import model_dirs


@pytest.fixture
def promoted(db, settings, tmp_path):
    """'old-v1' retired and 'new-v2' active, both random networks in a test models folder;
    yields the folder."""
    from diagnosis.classifier import get_classifier

    root = tmp_path / "models"
    model_dirs.random_model(root, "old-v1", current=True)
    model_dirs.random_model(root, "new-v2", seed=1)
    settings.ML_MODELS_ROOT = root
    services.model_registry_sync()
    ModelVersion.objects.filter(version="old-v1").update(status=ModelStatus.RETIRED)
    ModelVersion.objects.filter(version="new-v2").update(status=ModelStatus.ACTIVE)
    get_classifier.cache_clear()
    yield root
    get_classifier.cache_clear()


@pytest.fixture
def superuser(db):
    return factories.SuperuserFactory()
