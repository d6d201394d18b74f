from django.apps import AppConfig


class SheetsyncConfig(AppConfig):
    name = "sheetsync"
    verbose_name = "Google Sheets sync"
