"""Servers the integration tests start themselves: moto's S3 server (tests/s3.py), once per
session; each test that asks for `s3_bucket` gets its own empty bucket as the default storage,
in this process (settings) and in any worker it starts (`s3_bucket.env`)."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from tests.s3 import CREDENTIALS, S3Bucket, s3_server


@pytest.fixture(scope="session")
def s3_endpoint():
    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(s3_endpoint, settings, monkeypatch) -> S3Bucket:
    """A fresh bucket holding this test's patient files, encrypted by the portal too
    (IMAGE_ENCRYPTION_KEY), as a production installation with both would run."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    key = Fernet.generate_key().decode()
    bucket = S3Bucket.create(s3_endpoint, IMAGE_ENCRYPTION_KEY=key)
    settings.IMAGE_ENCRYPTION_KEY = key
    settings.STORAGES = {**settings.STORAGES, "default": bucket.storage_setting()}
    return bucket
