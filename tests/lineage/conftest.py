from tests.cleanup.conftest import content_admin, protected_folder  # noqa: F401 - the cleanup job's estate
from tests.sales.conftest import bigquery, sales_dirs, sheet  # noqa: F401 - the sales job's emulators
from tests.sheetsync.conftest import files, make_target, sheets  # noqa: F401, E402 - the sync job's emulator
