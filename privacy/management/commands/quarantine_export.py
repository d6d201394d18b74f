"""``manage.py quarantine_export [--run N] [--dataset D] [--output FILE]``: pseudonymised CSV of quarantined rows."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from privacy.exports import quarantine_csv, quarantine_rows


class Command(BaseCommand):
    help = "Export quarantined rows as CSV with personal columns (customer e-mail, id) as stable pseudonyms."

    def add_arguments(self, parser):
        parser.add_argument("--run", type=int, default=None, help="one quality run's rows")
        parser.add_argument("--dataset", default="", help="one dataset's rows (e.g. sales.order_lines)")
        parser.add_argument("--output", default="-", help="file to write (default: standard output)")

    def handle(self, *args, run: int | None, dataset: str, output: str, **options):
        rows = quarantine_rows(run_id=run, dataset=dataset)
        if not rows.exists():
            raise CommandError("no quarantined rows match (check --run and --dataset)")
        text = quarantine_csv(rows=rows)
        if output == "-":
            self.stdout.write(text, ending="")
        else:
            with open(output, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
            self.stderr.write(f"wrote {rows.count()} rows to {output}")
