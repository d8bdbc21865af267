"""The model registry: the shipped versions registered as a worker starts, imports checked
against their cards, shadow and retirement, the promotion gate on the cards' figures, rollback,
and the served version following the registry without a restart."""

from __future__ import annotations

import json
import shutil

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command

from accounts.models import AuditEvent
from diagnosis import services
from diagnosis.classifier import get_classifier
from diagnosis.models import ModelStatus, ModelStatusChange, ModelVersion
from tests import factories
from tests.diagnosis import model_dirs


@pytest.fixture
def models_root(db, settings, tmp_path):
    from diagnosis.classifier import _load_shadow

    root = tmp_path / "models"
    root.mkdir()
    settings.ML_MODELS_ROOT = root
    get_classifier.cache_clear()
    _load_shadow.cache_clear()
    yield root
    get_classifier.cache_clear()
    _load_shadow.cache_clear()


@pytest.fixture
def superuser(db):
    return factories.SuperuserFactory(full_name="Rita Root", email="root@portal.example")


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("pk"))


def _served_and_candidate(root, *, candidate_figures, served_figures=None):
    """Version 'served-v1' active (CURRENT, registered as a worker start would) and
    'next-v2' a candidate, both random 128 px networks with the given card figures."""
    model_dirs.random_model(
        root,
        "served-v1",
        figures=served_figures or model_dirs.validation(0.70, 0.95),
        current=True,
    )
    model_dirs.random_model(root, "next-v2", figures=candidate_figures, seed=1)
    services.model_registry_sync()
    return ModelVersion.objects.get(version="served-v1"), ModelVersion.objects.get(
        version="next-v2"
    )


def test_worker_start_registers_the_shipped_versions_with_current_active(models_root):
    model_dirs.link_shipped(models_root, model_dirs.V1)
    model_dirs.link_shipped(models_root, model_dirs.V2)
    (models_root / "CURRENT").write_text(model_dirs.V2 + "\n")

    registered = services.model_registry_sync()

    assert registered == [model_dirs.V2, model_dirs.V1]
    v1 = ModelVersion.objects.get(version=model_dirs.V1)
    v2 = ModelVersion.objects.get(version=model_dirs.V2)
    assert (v2.status, v1.status) == (ModelStatus.ACTIVE, ModelStatus.CANDIDATE)
    assert v2.checksums["weights.pt"] == v2.card["weights_sha256"]
    assert v2.validation["melanoma_sensitivity"]["value"] == 0.9747  # the triage, report half
    assert v1.validation["melanoma_sensitivity"]["value"] == 0.956  # the moderate tier
    assert "CURRENT names it" in v2.status_reason
    assert 0.98 < v2.gate_measured["report_half_accepted"]["share"] < 1  # its gate's own figures
    assert v1.gate_measured is None  # v1 ships no gate
    assert [e.detail["version"] for e in _events("model.register")] == registered
    # A second worker start changes nothing.
    assert services.model_registry_sync() == []


def test_a_directory_whose_card_names_another_version_is_not_registered(models_root):
    path = model_dirs.random_model(models_root, "named-v1")
    path.rename(models_root / "renamed-v1")

    assert services.model_registry_sync() == []
    assert not ModelVersion.objects.exists()


def test_served_version_follows_the_registry_without_reloading_by_hand(models_root, superuser):
    served, candidate = _served_and_candidate(
        models_root, candidate_figures=model_dirs.validation(0.72, 0.95)
    )
    assert get_classifier().version == "served-v1"

    services.model_version_promote(actor=superuser, model_version=candidate, reason="Better")

    # The same process, no cache cleared: the next call serves the promoted version.
    assert get_classifier().version == "next-v2"
    services.model_version_rollback(actor=superuser, reason="Second thoughts")
    assert get_classifier().version == "served-v1"


def test_before_anything_is_registered_current_is_served(models_root):
    model_dirs.random_model(models_root, "only-v1", current=True)

    assert get_classifier().version == "only-v1"


# --- import ------------------------------------------------------------------------------------


@pytest.fixture
def exported(tmp_path):
    return model_dirs.random_model(
        tmp_path / "exports", "imported-v3", figures=model_dirs.validation(0.7, 0.9)
    )


def test_import_verifies_copies_and_registers_a_candidate(models_root, exported, superuser):
    version = services.model_version_import(actor=superuser, path=exported)

    assert version.status == ModelStatus.CANDIDATE
    assert (models_root / "imported-v3" / "weights.pt").is_file()
    assert version.checksums["weights.pt"] == version.card["weights_sha256"]
    assert version.registered_by_name == "Rita Root"
    event = _events("model.import")[0]
    assert event.user == superuser and event.detail["version"] == "imported-v3"
    history = ModelStatusChange.objects.get(model_version=version)
    assert (history.to_status, history.by) == (ModelStatus.CANDIDATE, superuser)


def test_import_refuses_weights_that_do_not_match_the_card(models_root, exported, superuser):
    with open(exported / "weights.pt", "ab") as handle:
        handle.write(b"tampered")

    with pytest.raises(services.ModelChangeRefused, match="different exports"):
        services.model_version_import(actor=superuser, path=exported)

    assert not (models_root / "imported-v3").exists()
    assert not ModelVersion.objects.exists() and not _events("model.import")


def test_import_command_refuses_classes_in_another_order_in_plain_words(
    models_root, exported, superuser
):
    card = json.loads((exported / "card.json").read_text())
    card["classes"] = ["mel", "nv", "bcc", "akiec", "bkl", "df", "vasc"]
    (exported / "card.json").write_text(json.dumps(card))

    with pytest.raises(CommandError, match="not imported: The card's classes") as refusal:
        call_command("model_import", str(exported), by=superuser.email)

    assert "under another's name" in str(refusal.value)
    assert not ModelVersion.objects.exists()


def test_import_command_registers_and_says_so(models_root, exported, superuser, capsys):
    call_command("model_import", str(exported), by=superuser.email)

    assert "Registered imported-v3 as a candidate" in capsys.readouterr().out


def test_import_refuses_a_version_registered_already(models_root, exported, superuser):
    services.model_version_import(actor=superuser, path=exported)

    with pytest.raises(services.ModelChangeRefused, match="registered already .candidate."):
        services.model_version_import(actor=superuser, path=exported)


def test_import_refuses_a_version_whose_folder_holds_other_files(models_root, exported, superuser):
    shutil.copytree(exported, models_root / "imported-v3")
    (models_root / "imported-v3" / "notes.txt").write_text("someone else's")

    with pytest.raises(services.ModelChangeRefused, match="already holds other files"):
        services.model_version_import(actor=superuser, path=exported)


def test_only_a_superuser_imports(models_root, exported, clinic_admin):
    with pytest.raises(PermissionDenied):
        services.model_version_import(actor=clinic_admin, path=exported)
    with pytest.raises(CommandError, match="not an active superuser"):
        call_command("model_import", str(exported), by=clinic_admin.email)


# --- status ------------------------------------------------------------------------------------


def test_shadow_needs_a_reason_and_only_one_version_runs_in_shadow(models_root, superuser):
    first, second = factories.ModelVersionFactory(), factories.ModelVersionFactory()

    with pytest.raises(ValidationError, match="Say why"):
        services.model_version_set_status(
            actor=superuser, model_version=first, status="shadow", reason=" "
        )
    services.model_version_set_status(
        actor=superuser, model_version=first, status="shadow", reason="Watch it on real uploads"
    )
    with pytest.raises(services.ModelChangeRefused, match="runs in shadow already"):
        services.model_version_set_status(
            actor=superuser, model_version=second, status="shadow", reason="And this one"
        )

    first.refresh_from_db()
    assert first.status == ModelStatus.SHADOW
    assert first.status_changed_by == superuser
    assert first.status_reason == "Watch it on real uploads"
    event = _events("model.status")[0]
    assert event.detail | {"reason": ""} == {
        "version": first.version,
        "from_status": "candidate",
        "to_status": "shadow",
        "reason": "",
    }


def test_the_active_version_cannot_be_retired_by_hand(models_root, superuser):
    active = factories.ModelVersionFactory(status=ModelStatus.ACTIVE)

    with pytest.raises(services.ModelChangeRefused, match="cannot be made retired"):
        services.model_version_set_status(
            actor=superuser, model_version=active, status="retired", reason="Old"
        )
    with pytest.raises(services.ModelChangeRefused, match="only through promotion"):
        services.model_version_set_status(
            actor=superuser,
            model_version=factories.ModelVersionFactory(),
            status="active",
            reason="Skip the gate",
        )


# --- promotion on the shipped figures, rollback -------------------------------------------------


def test_gate_refuses_a_candidate_with_lower_melanoma_sensitivity_on_shipped_figures(
    models_root, superuser
):
    served, candidate = _served_and_candidate(
        models_root, candidate_figures=model_dirs.validation(0.75, 0.85)
    )

    with pytest.raises(services.PromotionRefused) as refused:
        services.model_version_promote(
            actor=superuser, model_version=candidate, reason="Higher accuracy"
        )

    message = str(refused.value.messages[0])
    assert "shipped validation figures" in message
    assert "melanoma sensitivity at the triage boundary 85.0% is below" in message
    decision = refused.value.decision
    assert decision.basis == "shipped"
    assert [check.passed for check in decision.checks] == [False, True]
    served.refresh_from_db()
    candidate.refresh_from_db()
    assert (served.status, candidate.status) == (ModelStatus.ACTIVE, ModelStatus.CANDIDATE)
    attempt = _events("model.promote_refused")[0]
    assert attempt.user == superuser and attempt.detail["gate"]["passed"] is False
    assert not _events("model.promote")


def test_gate_refuses_lower_balanced_accuracy_even_with_equal_sensitivity(models_root, superuser):
    served, candidate = _served_and_candidate(
        models_root, candidate_figures=model_dirs.validation(0.69, 0.95)
    )

    with pytest.raises(services.PromotionRefused, match="balanced accuracy 69.0% is below 70.0%"):
        services.model_version_promote(actor=superuser, model_version=candidate, reason="x")


def test_passing_promotion_retires_the_active_version_and_is_audited(models_root, superuser):
    served, candidate = _served_and_candidate(
        # Sensitivity a little lower, within the active version's interval (80 melanomas).
        models_root,
        candidate_figures=model_dirs.validation(0.73, 0.92),
    )

    services.model_version_promote(
        actor=superuser, model_version=candidate, reason="Better on the report half"
    )

    served.refresh_from_db()
    candidate.refresh_from_db()
    assert (served.status, candidate.status) == (ModelStatus.RETIRED, ModelStatus.ACTIVE)
    assert served.status_reason == "Replaced by next-v2: Better on the report half"
    change = candidate.status_changes.first()
    assert change.gate["passed"] is True and change.gate["basis"] == "shipped"
    event = _events("model.promote")[0]
    assert event.user == superuser
    assert (event.detail["version"], event.detail["replaced"]) == ("next-v2", "served-v1")


def test_promotion_needs_a_superuser_and_a_reason(models_root, superuser, clinic_admin):
    served, candidate = _served_and_candidate(
        models_root, candidate_figures=model_dirs.validation(0.8, 0.99)
    )

    with pytest.raises(PermissionDenied):
        services.model_version_promote(actor=clinic_admin, model_version=candidate, reason="x")
    with pytest.raises(ValidationError, match="Say why"):
        services.model_version_promote(actor=superuser, model_version=candidate, reason="")
    candidate.refresh_from_db()
    assert candidate.status == ModelStatus.CANDIDATE


def test_a_candidate_without_figures_is_refused_while_the_local_cases_are_few(
    models_root, superuser
):
    served, candidate = _served_and_candidate(models_root, candidate_figures=None)

    with pytest.raises(services.PromotionRefused, match="next-v2 ships no validation figures"):
        services.model_version_promote(actor=superuser, model_version=candidate, reason="x")


def test_rollback_serves_the_replaced_version_again(models_root, superuser):
    served, candidate = _served_and_candidate(
        models_root, candidate_figures=model_dirs.validation(0.8, 0.99)
    )
    services.model_version_promote(actor=superuser, model_version=candidate, reason="Better")

    call_command("model_promote", rollback=True, by=superuser.email, reason="Odd results")

    served.refresh_from_db()
    candidate.refresh_from_db()
    assert (served.status, candidate.status) == (ModelStatus.ACTIVE, ModelStatus.RETIRED)
    event = _events("model.rollback")[0]
    assert (event.detail["version"], event.detail["rolled_back"]) == ("served-v1", "next-v2")
    # A second rollback undoes the first: served-v1 replaced next-v2.
    assert services.model_version_rollback(actor=superuser, reason="Was fine").version == "next-v2"


def test_rollback_with_nothing_replaced_is_refused(models_root, superuser):
    _served_and_candidate(models_root, candidate_figures=None)

    with pytest.raises(services.ModelChangeRefused, match="nothing to roll back to"):
        services.model_version_rollback(actor=superuser, reason="Just in case")
