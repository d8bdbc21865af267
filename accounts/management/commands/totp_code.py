"""Print the code an authenticator app would show now: for trying the demo without a phone.

    manage.py totp_code JBSWY3DPEHPK3PXP             # the secret shown when setting one up
    manage.py totp_code --email doctor@demo.clinic   # an account's own (DEBUG only)

The first form computes a code from a secret you already hold, as any authenticator app does.
The second reads an account's stored secret, which no production site should hand out: it runs
only with DEBUG on (the dev settings), like load_demo.
"""

from __future__ import annotations

import binascii
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

TOTP_PERIOD_S = 30


class Command(BaseCommand):
    help = "Print the current authenticator (TOTP) code for a secret, or for a demo account."

    def add_arguments(self, parser) -> None:
        parser.add_argument("secret", nargs="?", help="the authenticator secret (base32)")
        parser.add_argument("--email", help="an account with an authenticator (DEBUG only)")

    def handle(self, *args, secret: str | None, email: str | None, **options) -> None:
        from allauth.mfa.adapter import get_adapter
        from allauth.mfa.models import Authenticator
        from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

        if bool(secret) == bool(email):
            raise CommandError("Give either the secret or --email, not both.")
        if email:
            if not settings.DEBUG:
                raise CommandError("--email reads a stored secret: it runs only with DEBUG on.")
            authenticator = Authenticator.objects.filter(
                user__email__iexact=email, type=Authenticator.Type.TOTP
            ).first()
            if authenticator is None:
                raise CommandError(
                    f"{email} has no authenticator yet: log in, and give this command the "
                    "secret shown under the QR code instead."
                )
            secret = get_adapter().decrypt(authenticator.data["secret"])
        secret = "".join(secret.split()).upper()
        now = time.time()
        try:
            code = format_hotp_value(hotp_value(secret, int(now // TOTP_PERIOD_S)))
        except (binascii.Error, ValueError):
            raise CommandError(
                "That is not an authenticator secret: copy the letters and digits shown under "
                "the QR code."
            ) from None
        left = TOTP_PERIOD_S - int(now % TOTP_PERIOD_S)
        self.stdout.write(code)
        self.stderr.write(f"(valid for {left} more seconds)")
