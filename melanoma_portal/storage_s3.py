"""Patient files in an S3 bucket (AWS, or any S3 API: MinIO, Ceph, moto's server in the tests).

Every object is written private (no ACL grant beyond the owner) with server-side encryption,
and is read back only by the portal's own clinic-checked views, which stream it with
`Cache-Control: no-store`. No URL to an object is ever handed out: `url()` refuses, as the
file-system storage does with MEDIA_URL unset, so no template, serializer or admin page can
leak a public or long-lived link by accident. The settings (base.py's
`default_storage_from_env`) choose these classes when AWS_STORAGE_BUCKET_NAME is set.
"""

from __future__ import annotations

from storages.backends.s3 import S3Storage

from melanoma_portal.storage import EncryptedStorageMixin


class PrivateS3Storage(S3Storage):
    def url(self, name, parameters=None, expire=None, http_method=None):
        raise ValueError(
            "Patient files have no URL: they are served only through the portal's "
            "clinic-checked views."
        )


class EncryptedS3Storage(EncryptedStorageMixin, PrivateS3Storage):
    """Fernet-encrypted by the portal (IMAGE_ENCRYPTION_KEY) before upload, and encrypted
    again at rest by the S3 server (ServerSideEncryption)."""
