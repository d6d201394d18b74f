"""System checks for a production deployment (issue 12): encryption keys and the secret key."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def security_deploy_checks(app_configs=None, **kwargs) -> list[Error]:
    errors: list[Error] = []
    if not [k for k in getattr(settings, "DATA_ENCRYPTION_KEYS", []) if k.strip()]:
        errors.append(
            Error(
                "DATA_ENCRYPTION_KEYS is not set: restricted values would be encrypted under a key derived from "
                "SECRET_KEY",
                hint="set DATA_ENCRYPTION_KEYS to one or more Fernet keys, newest first",
                id="security.E001",
            )
        )
    else:
        from .crypto import configured_keys, fernet

        try:
            configured_keys()
            fernet()
        except Exception as exc:  # noqa: BLE001 - ImproperlyConfigured with which entry is wrong
            errors.append(Error(str(exc), id="security.E001"))
    if settings.SECRET_KEY == "embedded-default-insecure-key":  # noqa: S105 - refusing it, not using it
        errors.append(
            Error("the embedded default's SECRET_KEY is in use", hint="set DJANGO_SECRET_KEY", id="security.E002")
        )
    return errors
