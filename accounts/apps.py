from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and roles"


class DataOpsAdminConfig(admin_apps.AdminConfig):
    """``django.contrib.admin`` with the project's site (``accounts.admin_site``) as ``admin.site``."""

    default = False  # named in INSTALLED_APPS in place of django.contrib.admin; not the accounts app's config
    default_site = "accounts.admin_site.DataOpsAdminSite"
