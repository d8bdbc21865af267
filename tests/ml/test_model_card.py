"""ml/MODEL_CARD.md says what the served model's card.json says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml.inference import CARD_FILE, CURRENT_FILE, MODELS_ROOT
from ml.model_card import ML_DIR, render


def _served_card() -> dict:
    current = MODELS_ROOT / CURRENT_FILE
    if not current.is_file():
        pytest.skip("no model installed")
    card = json.loads((MODELS_ROOT / current.read_text().strip() / CARD_FILE).read_text())
    if card.get("network") != "lesionnet":
        pytest.skip("the served model is a v1 model; its card is not generated")
    return card


def test_the_committed_model_card_is_the_render_of_the_served_card():
    card = _served_card()
    v1_path = ML_DIR / "model_card" / "v1_report_half" / "metrics.json"
    v1 = json.loads(v1_path.read_text())["metrics"] if v1_path.is_file() else None

    assert (ML_DIR / "MODEL_CARD.md").read_text() == render(card, v1), (
        "ml/MODEL_CARD.md is stale: run python -m ml.model_card --v1-report " + str(v1_path)
    )


def test_the_card_states_the_report_half_figures_and_the_disclaimer_of_use():
    card = _served_card()
    page = render(card)

    assert f"**{card['validation']['balanced_accuracy']:.3f}**" in page
    assert "not been clinically validated" in page
    assert card["version"] in page
    assert Path(ML_DIR / "models" / card["version"] / "weights.pt").is_file()
