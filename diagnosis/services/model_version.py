"""Writes of the model registry: registering versions (the shipped ones as a worker starts,
others by import), moving them into and out of shadow, the gated promotion, the rollback, and
the local evaluation that the gate reads.

Who may: a superuser, with a written reason, for every change of status (the Django admin and
the management commands call these same services). Every change is one audit event and one
ModelStatusChange row; a promotion the gate refuses is on the audit trail too.

How it reaches the workers: each analysis asks the registry which version is active
(diagnosis.classifier), so a promotion or rollback is served from the next task on, in every
running worker, without a restart.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import audit_record, audited_write
from accounts.models import User
from diagnosis.models import (
    ModelEvaluation,
    ModelStatus,
    ModelStatusChange,
    ModelVersion,
)
from diagnosis.selectors.model_version import (
    GateDecision,
    local_validation_cases,
    promotion_gate,
    version_with_status,
)

logger = logging.getLogger(__name__)

REASON_NEEDED = "Say why, in a few words: the reason is kept with the change for good."
NOT_SUPERUSER = "Only a superuser can change the models the portal knows or serves."


class ModelChangeRefused(ValidationError):
    """The change does not apply to the version as it stands (already active, nothing to roll
    back to, the gate refused it...). The message says why and what to do."""

    api_status_code = 409


def _require_superuser(actor: User | None) -> None:
    if actor is None or not (actor.is_authenticated and actor.is_active and actor.is_superuser):
        raise PermissionDenied(NOT_SUPERUSER)


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": REASON_NEEDED})
    return reason


def _models_root() -> Path:
    return Path(settings.ML_MODELS_ROOT)


def _set_status(
    version: ModelVersion,
    to_status: str,
    *,
    actor: User | None,
    reason: str,
    gate: dict | None = None,
) -> None:
    ModelStatusChange.objects.create(
        model_version=version,
        from_status=version.status if version.pk else "",
        to_status=to_status,
        by=actor,
        by_name=actor.get_full_name() if actor else "",
        reason=reason,
        gate=gate,
    )
    version.status = to_status
    version.status_changed_at = timezone.now()
    version.status_changed_by = actor
    version.status_changed_by_name = actor.get_full_name() if actor else ""
    version.status_reason = reason
    version.save(
        update_fields=[
            "status",
            "status_changed_at",
            "status_changed_by",
            "status_changed_by_name",
            "status_reason",
        ]
    )


def _register(verified, *, status: str, actor: User | None, reason: str) -> ModelVersion:
    from ml.local_validation import card_figures

    card = verified.card
    gate_measured = None
    if "gate.json" in verified.checksums:
        measured = json.loads((verified.path / "gate.json").read_text()).get("measured") or {}
        gate_measured = {
            name: {key: value for key, value in figures.items() if key != "images"}
            for name, figures in measured.items()
            if isinstance(figures, dict)
        }
    version = ModelVersion.objects.create(
        version=verified.version,
        architecture=str(card.get("architecture", "")),
        network=str(card.get("network", "")),
        runtime=str(card.get("runtime", "torch")),
        checksums=verified.checksums,
        card=card,
        validation=card_figures(card),
        gate_measured=gate_measured,
        status=ModelStatus.CANDIDATE,
        registered_by_name=actor.get_full_name() if actor else "",
    )
    ModelStatusChange.objects.create(
        model_version=version,
        from_status="",
        to_status=ModelStatus.CANDIDATE,
        by=actor,
        by_name=actor.get_full_name() if actor else "",
        reason=reason,
    )
    if status != ModelStatus.CANDIDATE:
        _set_status(version, status, actor=actor, reason=reason)
    return version


def model_registry_sync() -> list[str]:
    """Register every model directory under ML_MODELS_ROOT that the registry does not know
    yet (the shipped versions, as a worker starts): the one ml/models/CURRENT names becomes
    active if nothing is, the others candidates. A directory that fails verification is left
    out, with the reason in the log. Returns the versions registered; safe to run at once in
    several processes (the database refuses a second row of a version, or a second active)."""
    from diagnosis.classifier import verification_runtime
    from ml.served import CARD_FILE, CURRENT_FILE
    from ml.verify import ModelDirectoryRefused, verify_model_dir

    root = _models_root()
    if not root.is_dir():
        return []
    known = set(ModelVersion.objects.values_list("version", flat=True))
    current_file = root / CURRENT_FILE
    current = current_file.read_text().strip() if current_file.is_file() else ""
    registered = []
    # CURRENT first, so it is the one made active when the registry is empty.
    for path in sorted(root.iterdir(), key=lambda p: (p.name != current, p.name)):
        if path.name in known or not (path / CARD_FILE).is_file():
            continue
        try:
            verified = verify_model_dir(path, runtime=verification_runtime(path))
        except ModelDirectoryRefused as error:
            logger.warning("model directory %s not registered: %s", path, error)
            continue
        if verified.version != path.name:
            logger.warning(
                "model directory %s not registered: its card names version %s",
                path,
                verified.version,
            )
            continue
        make_active = path.name == current and version_with_status(ModelStatus.ACTIVE) is None
        status = ModelStatus.ACTIVE if make_active else ModelStatus.CANDIDATE
        try:
            with transaction.atomic():
                reason = (
                    "Shipped with the portal; served before the registry existed "
                    f"({CURRENT_FILE} names it)."
                    if make_active
                    else "Found in the models folder as a worker started."
                )
                version = _register(verified, status=status, actor=None, reason=reason)
                audit_record(
                    action="model.register",
                    obj=version,
                    version=version.version,
                    status=status,
                    via="models folder",
                )
        except IntegrityError:
            continue  # another process registered it (or made another active) meanwhile
        registered.append(verified.version)
    return registered


@audited_write("model.import")
def model_version_import(*, actor: User, path: Path | str, reason: str = "") -> ModelVersion:
    """Verify an exported model directory against its card (ml.verify: checksums, classes,
    preprocessing, that it loads), copy it into ML_MODELS_ROOT/<version> and register it as a
    candidate. Refused, with the reason in words, for a directory that does not match its card,
    or a version already registered or already present there with other files."""
    from ml.verify import ModelDirectoryRefused, verify_model_dir

    _require_superuser(actor)
    path = Path(path)
    try:
        verified = verify_model_dir(path)
    except ModelDirectoryRefused as error:
        raise ModelChangeRefused(f"{path} was not imported: {error}") from None
    existing = ModelVersion.objects.filter(version=verified.version).first()
    if existing is not None:
        same = existing.checksums == verified.checksums
        raise ModelChangeRefused(
            f"{verified.version} is registered already ({existing.get_status_display().lower()})"
            + (
                "; these are the same files, so there is nothing to import."
                if same
                else ", with different files: export the new model under a new version name."
            )
        )
    target = _models_root() / verified.version
    if target.exists() and target.resolve() != path.resolve():
        from ml.verify import file_sha256

        there = {
            entry.name: file_sha256(entry)
            for entry in target.iterdir()
            if entry.is_file() and not entry.name.startswith(".")
        }
        if there != verified.checksums:
            raise ModelChangeRefused(
                f"{target} already holds other files under the version {verified.version}: "
                "export the new model under a new version name."
            )
    elif not target.exists():
        # Copied beside the target and renamed, so a worker never sees half a directory.
        staging = Path(tempfile.mkdtemp(prefix=f".{verified.version}.", dir=_models_root()))
        try:
            shutil.copytree(path, staging, dirs_exist_ok=True)
            staging.chmod(0o755)
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    with transaction.atomic():
        version = _register(
            verified,
            status=ModelStatus.CANDIDATE,
            actor=actor,
            reason=(reason or "").strip() or f"Imported from {path}.",
        )
        audit_record(
            action="model.import",
            user=actor,
            obj=version,
            version=version.version,
            source=str(path),
            weights_sha256=verified.card.get("weights_sha256", ""),
        )
    return version


# The changes model_version_set_status makes; to active only through the gate (promote), and
# away from active only by promoting another version or rolling back.
ALLOWED = {
    ModelStatus.SHADOW: (ModelStatus.CANDIDATE, ModelStatus.RETIRED),
    ModelStatus.CANDIDATE: (ModelStatus.SHADOW, ModelStatus.RETIRED),
    ModelStatus.RETIRED: (ModelStatus.CANDIDATE, ModelStatus.SHADOW),
}


@audited_write("model.status")
def model_version_set_status(
    *, actor: User, model_version: ModelVersion, status: str, reason: str, request=None
) -> ModelVersion:
    """Put a version into shadow (it then runs beside the served one on every new upload, its
    results never shown), take it out (back to candidate), or retire it. Superuser, with a
    reason. At most one version runs in shadow."""
    _require_superuser(actor)
    reason = _require_reason(reason)
    if status not in ALLOWED:
        raise ModelChangeRefused(
            "A version becomes active only through promotion (the gate), and leaves active "
            "only when another is promoted or by rollback."
        )
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(pk=model_version.pk)
        if version.status not in ALLOWED[status]:
            raise ModelChangeRefused(
                f"{version.version} is {version.get_status_display().lower()}: it cannot be "
                f"made {ModelStatus(status).label.lower()} from there."
            )
        if status == ModelStatus.SHADOW:
            other = version_with_status(ModelStatus.SHADOW)
            if other is not None:
                raise ModelChangeRefused(
                    f"{other.version} runs in shadow already: take it out of shadow first "
                    "(one shadow version at a time)."
                )
        from_status = version.status
        _set_status(version, status, actor=actor, reason=reason)
        audit_record(
            action="model.status",
            user=actor,
            request=request,
            obj=version,
            version=version.version,
            from_status=from_status,
            to_status=status,
            reason=reason,
        )
    return version


class PromotionRefused(ModelChangeRefused):
    """The promotion gate refused the version; `decision` says on what evidence."""

    def __init__(self, decision: GateDecision) -> None:
        super().__init__(decision.refusal)
        self.decision = decision


@audited_write("model.promote", "model.promote_refused")
def model_version_promote(
    *, actor: User, model_version: ModelVersion, reason: str, request=None
) -> ModelVersion:
    """Make `model_version` the one the portal serves, if the promotion gate passes
    (diagnosis.selectors.model_version.promotion_gate); the version active until now is
    retired. Superuser, with a reason. Running workers serve it from their next task.

    A refusal raises PromotionRefused, whose message gives the figures, and is recorded on
    the audit trail as an attempt (nothing changed)."""
    _require_superuser(actor)
    reason = _require_reason(reason)
    with transaction.atomic():
        # Lock the rows that change (this version and the active one), so two promotions
        # cannot both pass.
        rows = ModelVersion.objects.select_for_update().filter(
            pk__in=[model_version.pk, *_active_pks()]
        )
        rows = {row.pk: row for row in rows}
        version = rows[model_version.pk]
        if version.status == ModelStatus.ACTIVE:
            raise ModelChangeRefused(f"{version.version} is the active version already.")
        decision = promotion_gate(version)
        if decision.passed:
            previous = next(
                (row for row in rows.values() if row.status == ModelStatus.ACTIVE), None
            )
            if previous is not None:
                _set_status(
                    previous,
                    ModelStatus.RETIRED,
                    actor=actor,
                    reason=f"Replaced by {version.version}: {reason}",
                )
            _set_status(
                version, ModelStatus.ACTIVE, actor=actor, reason=reason, gate=decision.as_dict()
            )
            audit_record(
                action="model.promote",
                user=actor,
                request=request,
                obj=version,
                version=version.version,
                replaced=previous.version if previous else "",
                reason=reason,
                gate=decision.as_dict(),
            )
            return version
    audit_record(
        action="model.promote_refused",
        user=actor,
        request=request,
        obj=model_version,
        version=model_version.version,
        reason=reason,
        gate=decision.as_dict(),
    )
    raise PromotionRefused(decision)


def _active_pks() -> list[int]:
    return list(ModelVersion.objects.filter(status=ModelStatus.ACTIVE).values_list("pk", flat=True))


@audited_write("model.rollback")
def model_version_rollback(*, actor: User, reason: str, request=None) -> ModelVersion:
    """Serve again the version the active one replaced (it is retired, and was served and
    measured before, so no gate); the active one is retired. Superuser, with a reason."""
    _require_superuser(actor)
    reason = _require_reason(reason)
    with transaction.atomic():
        active = ModelVersion.objects.select_for_update().filter(status=ModelStatus.ACTIVE).first()
        if active is None:
            raise ModelChangeRefused("No version is active: there is nothing to roll back.")
        replaced = (
            ModelStatusChange.objects.filter(
                from_status=ModelStatus.ACTIVE, to_status=ModelStatus.RETIRED
            )
            .exclude(model_version=active)
            .order_by("-at", "-id")
            .select_related("model_version")
            .first()
        )
        if replaced is None:
            raise ModelChangeRefused(
                f"{active.version} replaced no earlier version: there is nothing to roll "
                "back to. Promote another version instead."
            )
        previous = ModelVersion.objects.select_for_update().get(pk=replaced.model_version_id)
        if previous.status != ModelStatus.RETIRED:
            raise ModelChangeRefused(
                f"{previous.version}, which {active.version} replaced, is "
                f"{previous.get_status_display().lower()} now, not retired: promote the "
                "version you want instead."
            )
        _set_status(active, ModelStatus.RETIRED, actor=actor, reason=f"Rolled back: {reason}")
        _set_status(
            previous,
            ModelStatus.ACTIVE,
            actor=actor,
            reason=f"Rollback from {active.version}: {reason}",
        )
        audit_record(
            action="model.rollback",
            user=actor,
            request=request,
            obj=previous,
            version=previous.version,
            rolled_back=active.version,
            reason=reason,
        )
    return previous


@audited_write("model.evaluate")
def model_version_evaluate(
    *,
    actor: User,
    model_version: ModelVersion,
    clinic_id: int | None = None,
    resamples: int | None = None,
) -> ModelEvaluation:
    """Measure a version on the local validation set (the clinic's confirmed cases, or one
    clinic's with `clinic_id`) beside the version active now, on the same images, and store
    the report with the version. Superuser. Slow (every image through both models): run by
    manage.py model_evaluate or the admin's button, through a task."""
    from diagnosis.services.image import _open_image
    from diagnosis.services.lesion import lesion_metadata
    from ml.classes import class_index
    from ml.inference import Classifier
    from ml.local_validation import BOOTSTRAP_RESAMPLES, CONFIDENCE, Case, measure

    _require_superuser(actor)
    local = local_validation_cases(clinic_id=clinic_id)
    if not local.cases:
        raise ModelChangeRefused(
            "The clinic has no confirmed cases yet (a histology result, or a signed review, "
            "of a lesion whose image is still kept): there is nothing to evaluate on."
        )
    active = version_with_status(ModelStatus.ACTIVE)
    compared = active if active is not None and active.pk != model_version.pk else None
    classifiers = [
        Classifier.load(_models_root() / version.version, warm_up=False)
        for version in (model_version, compared)
        if version is not None
    ]

    def opener(case):
        def load():
            picture = _open_image(case.image)
            if picture is None:
                raise ModelChangeRefused(f"Image {case.image.pk} could not be read.")
            return picture

        return load

    cases = [
        Case(opener(c), lesion_metadata(c.image), class_index(c.label), c.lesion_id)
        for c in local.cases
    ]
    resamples = resamples or BOOTSTRAP_RESAMPLES
    reports = measure(classifiers, cases, resamples=resamples)
    report = {
        "cases": local.summary(),
        "bootstrap": {
            "resamples": resamples,
            "unit": "lesion",
            "confidence": CONFIDENCE,
            "seed": 0,
        },
        "note": (
            "Every image went through both versions without the image gate, so both are "
            "measured on the same cases. Labels: histology where it exists, else the latest "
            "signed review (counted under 'signed review')."
        ),
        "candidate": reports[0],
        "active": reports[1] if compared is not None else None,
    }
    with transaction.atomic():
        evaluation = ModelEvaluation.objects.create(
            model_version=model_version,
            compared_with=compared.version if compared is not None else "",
            n_cases=len(local.cases),
            n_melanomas=local.n_melanomas,
            report=report,
            created_by=actor,
            created_by_name=actor.get_full_name(),
        )
        audit_record(
            action="model.evaluate",
            user=actor,
            obj=model_version,
            version=model_version.version,
            compared_with=evaluation.compared_with,
            cases=evaluation.n_cases,
            melanomas=evaluation.n_melanomas,
        )
    return evaluation
