"""Reading the audit chain: the full verification (``audit_chain_verify``) and the admin banner's view of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.core.cache import cache

from .hashing import GENESIS_HASH, event_hash
from .models import AuditChainHead, AuditEvent
from .signing import AuditSigner


@dataclass(frozen=True)
class ChainProblem:
    """One finding. ``kind``: missing, altered, forged, rehashed, head, tail_lost, truncated, beyond_head,
    anchor_missing, anchor_invalid, anchors_unreadable."""

    kind: str
    seq: int | None
    message: str


@dataclass(frozen=True)
class ChainVerdict:
    ok: bool
    checked: int  # events 1..checked are intact (hash, link, signature, anchors)
    head_hash: str  # the hash of event #checked
    broken_seq: int | None = None  # the first bad event
    reason: str = ""
    problems: tuple[ChainProblem, ...] = ()
    head_seq: int = 0
    anchors_checked: int = 0
    last_anchor_at: datetime | None = None
    last_anchor_seq: int | None = None
    warnings: tuple[str, ...] = field(default=())
    verified_at: datetime | None = None

    @property
    def kind(self) -> str:
        return self.problems[0].kind if self.problems else ""

    def text(self) -> str:
        """One line: intact up to #N and last anchored at T, or the first broken link."""
        if not self.ok:
            where = f"at event #{self.broken_seq}: " if self.broken_seq else ": "
            return f"BROKEN {where}{self.reason} ({self.checked} events verified before it)"
        anchored = (
            f"last anchored at {self.last_anchor_at:%Y-%m-%d %H:%M:%S %Z} (#{self.last_anchor_seq})"
            if self.last_anchor_at
            else "never anchored"
        )
        return f"intact up to #{self.checked} (head {self.head_hash[:16]}), {anchored}, {self.anchors_checked} anchors"


_FIELDS = (
    "seq", "created_at", "actor_id", "actor_label", "action", "object_type", "object_id", "object_repr",
    "job_run_id", "data", "prev_hash", "hash",
)  # fmt: skip


def audit_chain_verify(*, batch_size: int = 2000, read_anchors: bool = True) -> ChainVerdict:
    """Verify the chain against its hashes, its signatures and the anchors in the backup store.

    Reports, naming the first bad event: a missing event, an altered one (hash), one inserted or rewritten and
    re-hashed outside the application (signature, or a hash that differs from an anchor's), rows beyond the
    head, a head moved back (its signature, or anchors beyond the last event: tail loss, truncation), and
    anchors missing from the store or whose signature fails.

    The head is read first and events up to it are checked, so writers appending during the check (their events
    and head update commit together) are neither missed nor mistaken for tampering.
    """
    from django.utils import timezone

    from .anchor import anchors_read

    signer = AuditSigner.from_settings()
    problems: list[ChainProblem] = []
    warnings: list[str] = []
    anchor_set = anchors_read() if read_anchors else None
    anchors = list(anchor_set.anchors) if anchor_set else []
    if anchor_set is not None:
        if anchor_set.error:
            problems.append(ChainProblem("anchors_unreadable", None, anchor_set.error))
        for name, why in anchor_set.invalid:
            problems.append(ChainProblem("anchor_invalid", None, f"anchor {name} cannot be trusted: {why}"))
        unsigned = sum(1 for a in anchors if not a.signed)
        if unsigned:
            warnings.append(f"{unsigned} anchor(s) written before anchors were signed: compared, but weaker")
        if not anchors and not anchor_set.error:
            warnings.append(
                "no anchors in the backup store: removed events cannot be detected until audit_anchor has run"
            )
    by_seq: dict[int, list] = {}
    for a in anchors:
        by_seq.setdefault(a.seq, []).append(a)

    head = AuditChainHead.objects.filter(pk=1).first()
    head_seq = head.seq if head else 0
    prev_hash = GENESIS_HASH
    expected = 1
    checked = 0
    last_matching_anchor = 0
    chain_broken = False
    rows = AuditEvent.objects.filter(seq__lte=head_seq).order_by("seq").values(*_FIELDS, "mac")
    for row in rows.iterator(chunk_size=batch_size):
        seq = row["seq"]
        problem = None
        if seq != expected:
            problem = ChainProblem("missing", expected, f"event #{expected} is missing (next is #{seq})")
        elif row["prev_hash"] != prev_hash:
            problem = ChainProblem("altered", seq, f"event #{seq} does not point at the hash of #{seq - 1}")
        elif event_hash(**{k: row[k] for k in _FIELDS if k != "hash"}) != row["hash"]:
            problem = ChainProblem("altered", seq, f"event #{seq} was altered (its hash does not match its content)")
        elif not signer.event_valid(seq, row["hash"], row["mac"]):
            problem = ChainProblem(
                "forged",
                seq,
                f"event #{seq} is not signed with the audit key: written or re-hashed outside the application "
                "(or AUDIT_HMAC_KEY changed: put the old key in AUDIT_HMAC_OLD_KEYS)",
            )
        else:
            for a in by_seq.get(seq, ()):
                if a.hash != row["hash"]:
                    problem = ChainProblem(
                        "rehashed",
                        seq,
                        f"event #{seq} does not match anchor {a.name} (written {_when(a.anchored_at)}): the chain "
                        f"was rewritten and re-hashed after #{last_matching_anchor}, at or before #{seq}",
                    )
                    break
            else:
                if seq in by_seq:
                    last_matching_anchor = seq
        if problem is not None:
            problems.insert(0, problem)
            chain_broken = True
            break
        prev_hash = row["hash"]
        expected += 1
        checked += 1

    if not chain_broken:
        # Anchors beyond the last intact event: events were removed (the strongest evidence, so it comes first).
        beyond_anchors = [a for a in anchors if a.seq > checked]
        if beyond_anchors:
            highest = max(beyond_anchors, key=lambda a: a.seq)
            what = "the chain was truncated" if checked == 0 else f"events after #{checked} were removed"
            problems.insert(
                0,
                ChainProblem(
                    "truncated" if checked == 0 else "tail_lost",
                    checked + 1,
                    f"{what}: anchor {highest.name} (written {_when(highest.anchored_at)}) records event "
                    f"#{highest.seq}, but the chain ends at #{checked}",
                ),
            )
        problems += _head_problems(head, head_seq, checked, prev_hash, signer)
    beyond = _rows_beyond_head(head_seq)
    if beyond is not None:
        problems.append(
            ChainProblem(
                "beyond_head",
                beyond,
                f"event #{beyond} lies beyond the chain head (#{head_seq}): it was written outside the application",
            )
        )
    if anchor_set is not None and not anchor_set.error:
        problems += _missing_anchor_problems(anchor_set, head_seq)

    problems.sort(key=lambda p: (p.seq is None, p.seq or 0))
    first = problems[0] if problems else None
    last = anchor_set.last if anchor_set else None
    return ChainVerdict(
        ok=not problems,
        checked=checked,
        head_hash=prev_hash,
        broken_seq=first.seq if first else None,
        reason=first.message if first else "",
        problems=tuple(problems),
        head_seq=head_seq,
        anchors_checked=len(anchors),
        last_anchor_at=last.anchored_at if last else None,
        last_anchor_seq=last.seq if last else None,
        warnings=tuple(warnings),
        verified_at=timezone.now(),
    )


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "at an unknown time"


def _head_problems(
    head: AuditChainHead | None, head_seq: int, checked: int, last_hash: str, signer: AuditSigner
) -> list[ChainProblem]:
    if head is None:
        if AuditEvent.objects.exists():
            return [ChainProblem("head", 1, "events exist but the chain head is missing")]
        return []
    if checked != head_seq:
        return [
            ChainProblem(
                "tail_lost",
                checked + 1,
                f"chain head says #{head_seq} but the events end at #{checked}: the last events were removed",
            )
        ]
    if head.hash != last_hash:
        return [ChainProblem("head", head_seq, f"the chain head does not point at the hash of event #{head_seq}")]
    if not signer.head_valid(head.seq, head.hash, head.mac):
        return [
            ChainProblem(
                "tail_lost",
                head_seq + 1,
                f"the chain head (#{head_seq}) was not written by the application: it was moved (back) by hand, "
                f"so events after #{head_seq} were probably removed",
            )
        ]
    return []


def _rows_beyond_head(head_seq: int) -> int | None:
    """The first event beyond the head, after re-reading the head (a concurrent append is not 'beyond')."""
    first = AuditEvent.objects.filter(seq__gt=head_seq).order_by("seq").values_list("seq", flat=True).first()
    if first is None:
        return None
    head_now = AuditChainHead.objects.filter(pk=1).values_list("seq", flat=True).first() or 0
    return AuditEvent.objects.filter(seq__gt=head_now).order_by("seq").values_list("seq", flat=True).first()


def _missing_anchor_problems(anchor_set, head_seq: int) -> list[ChainProblem]:
    """Anchors the chain says were written (``audit.anchored`` events) that the store no longer has."""
    present = {a.name for a in anchor_set.anchors} | {name for name, _ in anchor_set.invalid}
    problems = []
    recorded = AuditEvent.objects.filter(action="audit.anchored", seq__lte=head_seq).order_by("seq")
    for seq, data in recorded.values_list("seq", "data"):
        name = (data or {}).get("name")
        if name and name not in present:
            problems.append(
                ChainProblem(
                    "anchor_missing", None, f"anchor {name} (recorded by event #{seq}) is missing from the backup store"
                )
            )
    return problems


def audit_chain_state(*, fresh: bool = False) -> ChainVerdict:
    """The verdict the admin shows: a verification at most ``AUDIT_BANNER_CACHE_S`` old, or a fresh one."""
    head = AuditChainHead.objects.filter(pk=1).values_list("seq", "hash").first() or (0, GENESIS_HASH)
    key = f"audit-chain-verdict:{head[0]}:{head[1]}"
    if not fresh:
        cached = cache.get(key)
        if cached is not None:
            return cached
    verdict = audit_chain_verify()
    cache.set(key, verdict, settings.AUDIT_BANNER_CACHE_S)
    return verdict
