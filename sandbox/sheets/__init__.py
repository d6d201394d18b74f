"""A local emulator of the Google Sheets v4 and Drive v3 slices this project uses.

The real ``gspread`` talks to it over loopback once its Google hosts are rewritten to the
emulator's base URL (see :mod:`connectors.sheets`). Start one in-process with
:func:`sandbox.sheets.testing.running_sheets_emulator`, or as a process with
``python -m sandbox.sheets --port 9102``.
"""

from sandbox.sheets.server import SheetsEmulator, SheetsQuota
from sandbox.sheets.store import SheetsStore, load_fixture

__all__ = ["SheetsEmulator", "SheetsQuota", "SheetsStore", "load_fixture"]
