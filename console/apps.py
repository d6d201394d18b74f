from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The admin's front of house (issue 11): each role's home, the 403 page, time zones, links between objects."""

    name = "console"
    verbose_name = "Console"
