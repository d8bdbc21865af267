"""Lesions, their dermoscopic images, the AI analyses of those images, doctors' reviews and
histopathology. Django loads an app's models from this package, so it imports every model;
the upload-path functions are named here too because the migrations refer to them here."""

from diagnosis.models.analysis import (
    Analysis,
    AnalysisStatus,
    RiskTier,
    TriageLevel,
    heatmap_upload_path,
)
from diagnosis.models.histopathology import Histopathology
from diagnosis.models.lesion import AnatomicSite, DermoscopicImage, Lesion, image_upload_path
from diagnosis.models.review import DiagnosisChoice, Management, Review

__all__ = [
    "Analysis",
    "AnalysisStatus",
    "AnatomicSite",
    "DermoscopicImage",
    "DiagnosisChoice",
    "Histopathology",
    "Lesion",
    "Management",
    "Review",
    "RiskTier",
    "TriageLevel",
    "heatmap_upload_path",
    "image_upload_path",
]
