"""Reading job runs."""

from __future__ import annotations

from .models import JobRun


def job_run_summary_text(run: JobRun) -> str:
    """The one-screen summary printed by ``run_job`` and shown in the admin."""
    duration = f"{run.duration_s:.1f}s" if run.duration_s is not None else "-"
    lines = [
        f"{run}: {run.status.upper()} in {duration} (trigger {run.trigger}, attempt {run.attempts})",
    ]
    if run.params:
        lines.append("params: " + ", ".join(f"{k}={v}" for k, v in sorted(run.params.items())))
    if run.counters:
        lines.append("counters: " + ", ".join(f"{k}={v}" for k, v in sorted(run.counters.items())))
    if run.summary:
        lines.append("")
        lines.append(run.summary)
    if run.error:
        lines.append("")
        lines.append("ERROR: " + run.error.split("\n\n")[0])
    return "\n".join(lines)
