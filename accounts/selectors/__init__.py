"""Reads of clinic accounts (`users`) and of the audit trail (`audit`), scoped to the clinic."""

from accounts.selectors.audit import history_for
from accounts.selectors.users import clinic_user_get, clinic_user_list, clinic_user_rows

__all__ = ["clinic_user_get", "clinic_user_list", "clinic_user_rows", "history_for"]
