from allauth.account.adapter import DefaultAccountAdapter


class ClinicAccountAdapter(DefaultAccountAdapter):
    """No open sign-up: a clinic admin creates every account."""

    def is_open_for_signup(self, request) -> bool:
        return False
