"""Writes in the diagnosis domain, one module per sub-domain: lesions, images (upload and
retention), analyses, reviews, histopathology, referrals, the model registry and shadow runs.
Each write checks permission first, enforces the domain's rules and records its audit event in
its own transaction. Other apps, tasks and management commands call them through this
package."""

from diagnosis.services.analysis import (
    OverrideRefused,
    analysis_fail,
    analysis_override_gate,
    analysis_requeue_stale,
    analysis_retry,
    analysis_run,
    analysis_run_batch,
)
from diagnosis.services.batch import (
    FAILED_UNEXPECTEDLY,
    NO_CLASSIFIER,
    analyses_claim,
    analyses_run,
    analysis_claim_batch,
    analysis_release_batch,
)
from diagnosis.services.drift import drift_reports_compute
from diagnosis.services.histopathology import HISTOPATHOLOGY_FIELDS, histopathology_record
from diagnosis.services.housekeeping import heartbeat_record
from diagnosis.services.image import (
    DuplicateImage,
    image_duplicates,
    image_upload,
    images_past_retention,
    images_purge_expired,
)
from diagnosis.services.lesion import lesion_create, lesion_metadata, lesion_update
from diagnosis.services.model_version import (
    ModelChangeRefused,
    PromotionRefused,
    model_registry_sync,
    model_version_evaluate,
    model_version_import,
    model_version_promote,
    model_version_rollback,
    model_version_set_status,
)
from diagnosis.services.reanalysis import (
    ReanalysisSummary,
    analyses_reanalyse,
    reanalysis_run,
    reanalysis_version,
)
from diagnosis.services.referral import (
    ReferralAlreadyClosed,
    referral_close,
    referral_due_on,
    referral_open,
)
from diagnosis.services.review import (
    REVIEW_FIELDS,
    ReviewLocked,
    review_amend,
    review_cover,
    review_save,
    review_sign,
    review_sign_covering,
)
from diagnosis.services.shadow import shadow_run
from diagnosis.services.training_export import training_set_export

__all__ = [
    "HISTOPATHOLOGY_FIELDS",
    "DuplicateImage",
    "ModelChangeRefused",
    "NO_CLASSIFIER",
    "OverrideRefused",
    "PromotionRefused",
    "REVIEW_FIELDS",
    "ReferralAlreadyClosed",
    "ReviewLocked",
    "analyses_reanalyse",
    "reanalysis_run",
    "reanalysis_version",
    "ReanalysisSummary",
    "analysis_fail",
    "analysis_override_gate",
    "analysis_requeue_stale",
    "analysis_retry",
    "analysis_run",
    "analysis_run_batch",
    "analysis_release_batch",
    "analysis_claim_batch",
    "analyses_claim",
    "analyses_run",
    "FAILED_UNEXPECTEDLY",
    "heartbeat_record",
    "drift_reports_compute",
    "histopathology_record",
    "image_duplicates",
    "image_upload",
    "images_past_retention",
    "images_purge_expired",
    "lesion_create",
    "lesion_metadata",
    "lesion_update",
    "model_registry_sync",
    "model_version_evaluate",
    "model_version_import",
    "model_version_promote",
    "model_version_rollback",
    "model_version_set_status",
    "referral_close",
    "referral_due_on",
    "referral_open",
    "review_amend",
    "review_cover",
    "review_save",
    "review_sign",
    "review_sign_covering",
    "shadow_run",
    "training_set_export",
]
