"""diagnosis.presentation: one way to show a result, whoever shows it."""

from __future__ import annotations

from diagnosis import presentation
from diagnosis.models import DiagnosisChoice
from ml.classes import CLASS_NAMES, CLASSES


def test_rows_are_most_probable_first_and_ties_keep_the_class_code_order():
    probabilities = {"mel": 0.4, "nv": 0.4, "bkl": 0.2}

    rows = presentation.probability_rows(probabilities, top_class="nv")

    assert [row.code for row in rows] == ["mel", "nv", "bkl", "akiec", "bcc", "df", "vasc"]
    assert [row.code for row in rows if row.is_top] == ["nv"]
    assert rows[0].name == "Melanoma" and rows[0].percent == 40.0
    assert rows[0].percent_label == "40.0%"


def test_every_class_is_named_from_the_models_own_list():
    assert [presentation.class_name(code) for code in CLASSES] == [
        CLASS_NAMES[code] for code in CLASSES
    ]
    assert presentation.class_name("unknown-code") == "unknown-code"


def test_chart_draws_one_bar_per_class_with_melanoma_in_red():
    svg = presentation.probability_chart_svg({"mel": 0.7, "nv": 0.3}, top_class="nv")

    assert svg.count('fill="#e6ebf0"') == len(CLASSES)  # one track per class
    assert 'fill="#b42318"' in svg and 'fill="#1f5f99"' in svg  # melanoma; the top class
    assert "70.0%" in svg and "Actinic keratosis / Bowen's disease" in svg


def test_ai_suggestion_names_the_class_the_melanoma_probability_and_the_tier():
    text = presentation.ai_suggestion_text(
        top_class="mel", melanoma_probability=0.712, risk_tier="high"
    )

    assert text == "AI suggestion: Melanoma (melanoma probability 71.2%, risk tier high)."


def test_doctors_diagnoses_are_the_classifiers_classes_by_the_same_names_plus_other():
    choices = dict(DiagnosisChoice.choices)

    assert set(choices) == {*CLASSES, "other"}
    assert all(choices[code] == CLASS_NAMES[code] for code in CLASSES)
