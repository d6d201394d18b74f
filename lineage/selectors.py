"""Reading lineage: a dataset's upstream and downstream datasets, the runs between them and the people in them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from .models import LineageDataset, LineageEvent, LineageIO

MAX_DEPTH = 4
MAX_NODES = 200  # a graph a person can read; beyond this the walk stops and says so


@dataclass
class Node:
    id: str
    kind: str  # dataset, run, person
    label: str
    detail: str = ""
    url: str = ""
    level: int = 0


@dataclass
class Edge:
    source: str
    target: str
    kind: str  # input (dataset -> run), output (run -> dataset), actor (person -> run)


@dataclass
class Graph:
    center: LineageDataset
    day: date | None
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    truncated: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": {"id": self.center.pk, "namespace": self.center.namespace, "name": self.center.name},
            "date": self.day.isoformat() if self.day else None,
            "truncated": self.truncated,
            "nodes": [vars(n) for n in self.nodes.values()],
            "edges": [vars(e) for e in self.edges],
        }


def _window(day: date | None) -> tuple[datetime, datetime] | None:
    if day is None:
        return None
    tz = timezone.get_current_timezone()
    start = datetime.combine(day, time.min, tzinfo=tz)
    return start, start + timedelta(days=1)


def _is_stage(event: LineageEvent) -> bool:
    """A stage's child run (``sales_report.validation``): drawn as part of its parent run, not on its own."""
    return bool(event.parent_job_name) and event.job_name.startswith(f"{event.parent_job_name}.")


def lineage_graph(*, dataset: LineageDataset, day: date | None = None, depth: int = 2) -> Graph:
    """Upstream (what fed the dataset) and downstream (what it fed), ``depth`` runs each way.

    With ``day``, only runs with an event on that day count ("what fed the sheet on 1 November?").
    """
    depth = max(1, min(depth, MAX_DEPTH))
    graph = Graph(center=dataset, day=day)
    window = _window(day)
    graph.nodes[f"d{dataset.pk}"] = _dataset_node(dataset, 0, day)
    runs: dict[str, dict[str, Any]] = {}

    def io(**filters: Any) -> list[LineageIO]:
        qs = LineageIO.objects.filter(**filters).select_related("event", "dataset")
        if window:
            qs = qs.filter(event_time__gte=window[0], event_time__lt=window[1])
        return [row for row in qs.order_by("event_time", "pk") if not _is_stage(row.event)]

    for direction, step in (("upstream", -1), ("downstream", 1)):
        frontier = [dataset.pk]
        seen = {dataset.pk}
        for hop in range(depth):
            next_frontier: list[int] = []
            near = "output" if direction == "upstream" else "input"
            far = "input" if direction == "upstream" else "output"
            run_rows = io(dataset_id__in=frontier, direction=near)
            run_ids = sorted({r.run_id for r in run_rows})
            for row in run_rows:
                _add_run(graph, runs, row.event, level=step * (2 * hop + 1))
                edge = (
                    Edge(f"r{row.run_id}", f"d{row.dataset_id}", "output")
                    if near == "output"
                    else Edge(f"d{row.dataset_id}", f"r{row.run_id}", "input")
                )
                _add_edge(graph, edge)
            for row in io(run_id__in=run_ids, direction=far):
                if f"d{row.dataset_id}" not in graph.nodes:
                    if len(graph.nodes) >= MAX_NODES:
                        graph.truncated = True
                        continue
                    graph.nodes[f"d{row.dataset_id}"] = _dataset_node(row.dataset, step * (2 * hop + 2), day)
                edge = (
                    Edge(f"d{row.dataset_id}", f"r{row.run_id}", "input")
                    if far == "input"
                    else Edge(f"r{row.run_id}", f"d{row.dataset_id}", "output")
                )
                _add_edge(graph, edge)
                if row.dataset_id not in seen:
                    seen.add(row.dataset_id)
                    next_frontier.append(row.dataset_id)
            frontier = next_frontier
            if not frontier:
                break
    return graph


def _add_edge(graph: Graph, edge: Edge) -> None:
    if not any(e.source == edge.source and e.target == edge.target for e in graph.edges):
        graph.edges.append(edge)


def _dataset_node(dataset: LineageDataset, level: int, day: date | None) -> Node:
    url = reverse("admin:lineage_lineagedataset_change", args=[dataset.pk])
    if day:
        url += f"?date={day.isoformat()}"
    return Node(id=f"d{dataset.pk}", kind="dataset", label=dataset.name, detail=dataset.namespace, url=url, level=level)


def _add_run(graph: Graph, runs: dict[str, dict[str, Any]], event: LineageEvent, *, level: int) -> None:
    key = f"r{event.run_id}"
    if key in graph.nodes:
        return
    events = list(LineageEvent.objects.filter(run_id=event.run_id).order_by("event_time", "pk"))
    last = events[-1] if events else event
    job_run_id = next((e.job_run_id for e in events if e.job_run_id), None)
    if job_run_id:
        url = reverse("admin:orchestration_jobrun_change", args=[job_run_id])
    else:
        url = reverse("admin:lineage_lineageevent_changelist") + f"?run_id={event.run_id}"
    when = timezone.localtime(last.event_time).strftime("%Y-%m-%d %H:%M")
    if not job_run_id:
        label = last.job_name
    elif last.job_name.startswith("governance."):
        label = f"{last.job_name} (in run #{job_run_id})"
    else:
        label = f"{last.job_name} #{job_run_id}"
    graph.nodes[key] = Node(id=key, kind="run", label=label, detail=f"{last.event_type} {when}", url=url, level=level)
    runs[key] = {"job_run_id": job_run_id}
    actors = sorted({e.actor for e in events if e.actor})
    for actor in actors:
        person = f"p{actor}"
        if person not in graph.nodes:
            graph.nodes[person] = Node(
                id=person,
                kind="person",
                label=actor,
                detail="person" if not actor.startswith(("schedule", "cli:", "airflow")) else "principal",
                url=reverse("admin:lineage_lineageevent_changelist") + f"?actor={actor}",
                level=level,
            )
        _add_edge(graph, Edge(person, key, "actor"))


def lineage_dataset_find(*, namespace: str, name: str) -> LineageDataset | None:
    return LineageDataset.objects.filter(namespace=namespace, name=name).first()


def lineage_namespace() -> str:
    return settings.LINEAGE_NAMESPACE
