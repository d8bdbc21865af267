from django.apps import AppConfig


class DiagnosisConfig(AppConfig):
    name = "diagnosis"

    def ready(self) -> None:
        # The patient's page shows the patient's lesions and analyses; the patients app asks
        # for them through this hook instead of importing diagnosis.
        from diagnosis.views.lesion import patient_page_section
        from patients.views.records import register_patient_page_section

        register_patient_page_section(patient_page_section)
        # check --deploy warns when images would be stored unencrypted.
        from diagnosis import checks  # noqa: F401
