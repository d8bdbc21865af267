from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and clinics"

    def ready(self) -> None:
        # Importing the module connects its receivers (log-in, log-out, role changes).
        from accounts import mfa, signals  # noqa: F401 - signals' receivers connect on import

        mfa.connect_audit_signals()
