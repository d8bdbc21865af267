"""The classifier's embedding of an analysed image, for finding the clinic's most similar
confirmed cases (diagnosis.selectors.similar).

The worker stores it with the prediction: the network's pooled image features, reduced by the
PCA shipped beside the model (ml.embedding). Vectors of different models or reductions live in
different spaces and are never compared: `space` names the one a vector belongs to.
"""

from __future__ import annotations

from django.db import models

from diagnosis.models.analysis import Analysis


class ImageEmbedding(models.Model):
    analysis = models.OneToOneField(Analysis, on_delete=models.CASCADE, related_name="embedding")
    # The analysis's clinic, copied (a patient never changes clinic): the similar-case index
    # reads one clinic's vectors by this column alone, with no join through four tables.
    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.CASCADE, related_name="+")
    # "<model version>/pca<dims>-<first 12 hex digits of the reduction's sha256>"
    space = models.CharField(max_length=120)
    # float32, little-endian, L2-normalised: dims * 4 bytes.
    vector = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The similar-case index reads a clinic's rows of a space in id order, then only newer
        # ones.
        indexes = [models.Index(fields=["clinic", "space", "id"], name="embedding_clinic_space_id")]

    def __str__(self) -> str:
        return f"Embedding of analysis {self.analysis_id} ({self.space})"

    @property
    def audit_patient_id(self) -> int:
        return self.analysis.image.lesion.patient_id
