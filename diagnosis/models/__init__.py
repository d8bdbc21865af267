"""Lesions, their dermoscopic images, the AI analyses of those images, doctors' reviews,
histopathology, referrals and the model registry. Django loads an app's models from this
package, so it imports every model; the upload-path functions are named here too because the
migrations refer to them here."""

from diagnosis.models.analysis import (
    Analysis,
    AnalysisStatus,
    RiskTier,
    TriageLevel,
    heatmap_upload_path,
)
from diagnosis.models.embedding import ImageEmbedding
from diagnosis.models.histopathology import Histopathology
from diagnosis.models.housekeeping import Heartbeat
from diagnosis.models.lesion import (
    AnatomicSite,
    DermoscopicImage,
    Laterality,
    Lesion,
    image_upload_path,
)
from diagnosis.models.model_version import (
    DriftReport,
    ModelEvaluation,
    ModelStatus,
    ModelStatusChange,
    ModelVersion,
    ShadowResult,
    ShadowStatus,
)
from diagnosis.models.referral import (
    REFERRING_DECISIONS,
    Referral,
    ReferralStatus,
    ReferralUrgency,
)
from diagnosis.models.review import DiagnosisChoice, Management, Review

__all__ = [
    "REFERRING_DECISIONS",
    "Analysis",
    "AnalysisStatus",
    "AnatomicSite",
    "DermoscopicImage",
    "DiagnosisChoice",
    "Heartbeat",
    "DriftReport",
    "Histopathology",
    "ImageEmbedding",
    "Laterality",
    "Lesion",
    "Management",
    "ModelEvaluation",
    "ModelStatus",
    "ModelStatusChange",
    "ModelVersion",
    "Referral",
    "ReferralStatus",
    "ReferralUrgency",
    "Review",
    "RiskTier",
    "ShadowResult",
    "ShadowStatus",
    "TriageLevel",
    "heatmap_upload_path",
    "image_upload_path",
]
