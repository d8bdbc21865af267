"""Patient pages: the records (`records`) and patients' rights (`rights`), mapped by
patients/urls.py."""
