"""Sheets requests per publish of the sales report: the project's one verified batch vs a naive cell-by-cell update.

Both run in this process against the Sheets emulator (20 ms per request by default), on the same report, in the
same run. The project reads the previous values once (kept for the rollback), then writes the table and the
status block in ONE values batchUpdate that also returns what the sheet stored (the verification read). The naive
flow updates every cell with its own request, as a script calling gspread's ``update_cell`` would, then reads
the range back to verify.

    .venv/bin/python bench/sales_publish_bench.py [--rows 500] [--latency-ms 20]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors.sheets import SheetsClient, grid_to_a1  # noqa: E402
from sales.publish import report_publish  # noqa: E402
from sandbox.sheets.testing import running_sheets_emulator  # noqa: E402


def make_report(rows: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    regions = ["APAC", "EMEA", "LATAM", "MEA", "NA"]
    start = date(2026, 1, 1)
    return [
        {"day": (start + timedelta(days=i // len(regions))).isoformat(), "region": regions[i % len(regions)],
         "orders": rng.randint(10, 500), "revenue": round(rng.uniform(1_000, 90_000), 2)}
        for i in range(rows)
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--latency-ms", type=int, default=20)
    args = parser.parse_args()
    report = make_report(args.rows)
    status = [["Last updated", "2026-11-26T00:00:00"], ["Quality score", 100.0], ["Run", "bench"], ["Rows", args.rows]]
    with running_sheets_emulator(latency_ms=args.latency_ms) as emulator:
        for sid in ("project", "naive"):
            emulator.store.create_spreadsheet(sid, {"Report": [["old"]]}, spreadsheet_id=sid, rows=args.rows + 200)
        client = SheetsClient(endpoint=emulator.base_url, credentials_file=None, rate_limit_per_minute=None)

        before = emulator.counters().get("total", 0)
        t0 = time.perf_counter()
        outcome = report_publish(sheets=client, spreadsheet_id="project", rows=report, status=status)
        project_s = time.perf_counter() - t0
        project_requests = emulator.counters().get("total", 0) - before

        table = [["day", "region", "orders", "revenue"]] + [[r["day"], r["region"], r["orders"], r["revenue"]]
                                                           for r in report]
        before = emulator.counters().get("total", 0)
        t0 = time.perf_counter()
        for i, row in enumerate(table, start=1):
            for j, value in enumerate(row, start=1):
                client.values_batch_update(spreadsheet_id="naive", data=[(grid_to_a1("Report", i, j), [[value]])])
        for i, row in enumerate(status, start=1):
            for j, value in enumerate(row, start=6):
                client.values_batch_update(spreadsheet_id="naive", data=[(grid_to_a1("Report", i, j), [[value]])])
        client.values_get(spreadsheet_id="naive", range=f"'Report'!A1:G{len(table)}")
        naive_s = time.perf_counter() - t0
        naive_requests = emulator.counters().get("total", 0) - before
        same = emulator.store.values("project", "Report") == emulator.store.values("naive", "Report")

    print(f"report             {args.rows} rows x 4 columns + a 4x2 status block, {args.latency_ms} ms per request")
    print(f"project publish    {project_requests} requests ({outcome.requests} counted by the client), "
          f"{project_s:.2f} s, {outcome.cells} cells written, verified in the same write")
    print(f"naive cell-by-cell {naive_requests} requests, {naive_s:.2f} s")
    print(f"ratio              {naive_requests / max(1, project_requests):.0f}x fewer requests, "
          f"{naive_s / max(project_s, 1e-9):.0f}x faster")
    verdict = "PASS" if project_requests <= 3 else "FAIL"
    print(f"{verdict}  requests per publish {project_requests} <= 3 (including the verification read)")
    print(f"{'PASS' if same else 'FAIL'}  both flows leave the same values in the sheet")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
