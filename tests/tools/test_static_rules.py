"""tools/check_static_rules.py: the portal keeps its house rules, and each rule catches a breach."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.check_static_rules import check_file, check_tree

BREACHES = {
    "task-time-limits": """
from celery import shared_task

@shared_task(soft_time_limit=10)
def purge(image_id): ...
""",
    "enqueue-on-commit": """
def upload(analysis):
    analyse_image.delay(analysis.pk)
""",
    "view-declares-roles": """
from django.contrib.auth.decorators import login_required

@login_required
def patient_export(request, patient_id): ...
""",
}

KEPT = """
from celery import shared_task
from django.db import transaction

from accounts.decorators import clinic_role_required

@shared_task(soft_time_limit=10, time_limit=20)
def purge(image_id): ...

def upload(analysis):
    analyse_image.delay_on_commit(analysis.pk)
    transaction.on_commit(lambda: analyse_image.delay(analysis.pk))

@clinic_role_required()
def patient_page(request, patient_id): ...

def _helper(request): ...
"""


def test_the_portal_keeps_the_house_rules():
    assert [str(breach) for breach in check_tree()] == []


@pytest.mark.parametrize("rule", sorted(BREACHES))
def test_each_rule_catches_its_breach(tmp_path: Path, rule: str):
    views = tmp_path / "views.py"
    views.write_text(BREACHES[rule])

    assert [breach.rule for breach in check_file(views, tmp_path)] == [rule]


def test_code_that_follows_the_rules_passes(tmp_path: Path):
    views = tmp_path / "views.py"
    views.write_text(KEPT)

    assert check_file(views, tmp_path) == []
