"""A real S3 API server for the tests: moto's server (`python -m moto.server`, from PyPI's
moto[s3] with Flask), started on a free local port, one per test session.

    with s3_server() as endpoint:                  # "http://127.0.0.1:<port>"
        bucket = S3Bucket.create(endpoint)         # a fresh, empty bucket
        settings.STORAGES = {**settings.STORAGES, "default": bucket.storage_setting()}
        celery_worker(env=bucket.env)              # the worker stores and reads there too

The portal talks to it exactly as to AWS: through django-storages and boto3, configured by the
same environment variables (melanoma_portal.settings.base.default_storage_from_env).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from melanoma_portal.settings.base import default_storage_from_env

# moto accepts any credentials; boto3 insists on having some.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "portal-test",
    "AWS_SECRET_ACCESS_KEY": "portal-test-secret",
    "AWS_DEFAULT_REGION": "eu-central-1",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, *, timeout: float = 30, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@contextmanager
def s3_server() -> Iterator[str]:
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="moto-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **CREDENTIALS},
        start_new_session=True,
    )
    try:
        wait_for_port(port, process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        Path(log.name).unlink(missing_ok=True)


@dataclass
class S3Bucket:
    endpoint: str
    name: str
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, endpoint: str, **extra_env: str) -> S3Bucket:
        bucket = cls(endpoint, f"portal-test-{uuid.uuid4().hex[:12]}", dict(extra_env))
        bucket.client().create_bucket(
            Bucket=bucket.name,
            CreateBucketConfiguration={"LocationConstraint": CREDENTIALS["AWS_DEFAULT_REGION"]},
        )
        return bucket

    @property
    def env(self) -> dict[str, str]:
        """What a process needs in its environment to keep its files in this bucket."""
        return {
            **CREDENTIALS,
            "AWS_STORAGE_BUCKET_NAME": self.name,
            "AWS_S3_ENDPOINT_URL": self.endpoint,
            "AWS_S3_REGION_NAME": CREDENTIALS["AWS_DEFAULT_REGION"],
            **self.extra_env,
        }

    def storage_setting(self) -> dict:
        return default_storage_from_env(self.env)

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def keys(self) -> set[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.name)
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    def read(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.name, Key=key)["Body"].read()
