from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.contrib.admin.checks import check_admin_app, check_dependencies
from django.core import checks


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and roles"


def check_admin_app_discovered(app_configs, **kwargs):
    """Django's admin checks, on every app's ModelAdmins: autodiscovery first (the URLconf does it otherwise)."""
    from django.contrib import admin

    admin.autodiscover()
    return check_admin_app(app_configs, **kwargs)


class DataOpsAdminConfig(admin_apps.SimpleAdminConfig):
    """``django.contrib.admin`` with the project's site (``accounts.admin_site``) as ``admin.site``.

    Without autodiscovery at set-up (issue 15): importing every app's admin module (and DRF, django-filter, the
    apps' forms and views with them) cost every ``run_job`` process, one per Airflow task, at start-up. The root
    URLconf (``dataops_site.urls``) calls ``admin.autodiscover()``, Django's documented way with
    ``SimpleAdminConfig``, so a process discovers the admin when it first resolves or reverses a URL (a request,
    an e-mail with a link); ``manage.py check`` (and every command running the checks) discovers it before the
    admin checks.
    """

    default = False  # named in INSTALLED_APPS in place of django.contrib.admin; not the accounts app's config
    default_site = "accounts.admin_site.DataOpsAdminSite"

    def ready(self) -> None:
        checks.register(check_dependencies, checks.Tags.admin)
        checks.register(check_admin_app_discovered, checks.Tags.admin)
