"""The build record (``build.json``): what one build cell did, typed.

Written by the builder (into the build cache and the run folder), annotated by triage and remedy, read by
the runner (where the binary is), history, the report, merge and bisection. The JSON keys are those of
earlier releases; keys this release does not know are kept in ``extra`` and written back unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from harness.live.vocab import Stage, Verdict


@dataclass(frozen=True)
class ImageInfo:
    """The container image a build ran in (``tag`` carries the recipe hash, ``id`` the content)."""

    name: str
    tag: str
    id: str


@dataclass
class TriageRecord:
    """Why a build failed, in a maintainer's words, and the matrix change that would get past it."""

    stage: str
    cause: str
    explanation: str
    remedy: str = ""  # one human sentence
    rule: str = "unclassified"  # the triage rule's id
    evidence: str = ""  # the line that matched (or the first error line)
    change: dict[str, Any] | None = None  # the matrix change --remedy auto applies
    alternatives: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TriageRecord:
        return cls(
            stage=str(d.get("stage") or ""),
            cause=str(d.get("cause") or ""),
            explanation=str(d.get("explanation") or ""),
            remedy=str(d.get("remedy") or ""),
            rule=str(d.get("rule") or "unclassified"),
            evidence=str(d.get("evidence") or ""),
            change=d.get("change") if isinstance(d.get("change"), dict) else None,
            alternatives=[a for a in d.get("alternatives") or [] if isinstance(a, dict)],
        )


_OPTIONAL = (
    "error",
    "hint",
    "key",
    "log",
    "source_dir",
    "compiler",
    "ccache",
    "artifacts",
    "qemu_version",
    "binary",
    "remedy_attempt",
    "remedy_of",
    "incremental",
    "finished_at",
)


@dataclass
class BuildRecord:
    """One build cell's record. ``stage`` is where it stopped (None once it passed)."""

    cell: str
    tree: str
    kind: str
    profile: str
    verdict: Verdict = Verdict.RUNNING
    stage: Stage | None = Stage.FETCH
    started_at: str = ""
    finished_at: str | None = None
    durations: dict[str, float] = field(default_factory=dict)  # fetch_s, configure_s, build_s, total_s
    image: ImageInfo | None = None
    source: dict[str, Any] = field(default_factory=dict)  # {"digest": ..., **provenance}
    key: str | None = None  # the build key (sha256 of source, patches, flags, targets, image)
    configure: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    series: dict[str, Any] | None = None  # the patch queue and each patch's status
    cache_hit: bool = False
    log: str | None = None  # the build log in the cache
    source_dir: str | None = None
    compiler: str | None = None
    ccache: dict[str, int] | None = None
    artifacts: dict[str, Any] | None = None  # {"dir": ..., "binaries": [...]}
    qemu_version: str | None = None
    binary: str | None = None  # prebuilt trees: the binary inside the image
    error: str | None = None
    hint: str | None = None
    log_tail: list[str] = field(default_factory=list)
    triage: TriageRecord | None = None
    remedy_attempt: dict[str, Any] | None = None  # on a failed cell: the retry --remedy auto made
    remedy_of: dict[str, Any] | None = None  # on a retry: the cell it stands in for
    # a build that started from an earlier build's directory (bisection steps): which, and what changed
    incremental: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys of other releases, kept as they are

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.PASS

    @property
    def infra(self) -> bool:
        """Failed because of the machinery (engine, disk, image), not the tree."""
        return self.verdict is Verdict.ERROR and self.stage is Stage.INFRA

    @property
    def binaries(self) -> list[str]:
        return [str(b) for b in (self.artifacts or {}).get("binaries", [])]

    def why(self) -> str:
        """One line on why the build did not pass: stage, then error, triage cause or last log line."""
        tail = [line.strip() for line in self.log_tail if line.strip()]
        cause = self.triage.cause if self.triage else ""
        why = self.error or cause or (tail[-1] if tail else "no error recorded")
        return f"stage {self.stage or '?'}: {why}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "cell": self.cell,
            "tree": self.tree,
            "kind": self.kind,
            "profile": self.profile,
            "verdict": str(self.verdict),
            "stage": None if self.stage is None else str(self.stage),
            "started_at": self.started_at,
            "durations": dict(self.durations),
            "cache_hit": self.cache_hit,
        }
        if self.image is not None:
            out["image"] = asdict(self.image)
        if self.source:
            out["source"] = dict(self.source)
        if self.configure or self.targets or self.key:
            out["configure"], out["targets"] = list(self.configure), list(self.targets)
            out["series"] = self.series
        for name in _OPTIONAL:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.log_tail:
            out["log_tail"] = list(self.log_tail)
        if self.triage is not None:
            out["triage"] = self.triage.to_json()
        return {**self.extra, **out}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BuildRecord:
        """Read a ``build.json`` object. Raises ValueError when it is not one."""
        if not isinstance(d, dict):
            raise ValueError(f"a build record must be a JSON object, not {type(d).__name__}")
        known = {f.name for f in fields(cls)} - {"extra"}
        try:
            verdict = Verdict(str(d.get("verdict") or "error"))
        except ValueError:
            verdict = Verdict.ERROR
        try:
            stage = Stage(str(d["stage"])) if d.get("stage") else None
        except ValueError:
            stage = None
        image = d.get("image")
        triage = d.get("triage")
        tail = d.get("log_tail") or []
        return cls(
            cell=str(d.get("cell") or ""),
            tree=str(d.get("tree") or ""),
            kind=str(d.get("kind") or ""),
            profile=str(d.get("profile") or ""),
            verdict=verdict,
            stage=stage,
            started_at=str(d.get("started_at") or ""),
            finished_at=str(d["finished_at"]) if d.get("finished_at") else None,
            durations={str(k): float(v) for k, v in (d.get("durations") or {}).items() if v is not None},
            image=ImageInfo(**{k: str(image.get(k, "")) for k in ("name", "tag", "id")})
            if isinstance(image, dict)
            else None,
            source=dict(d["source"]) if isinstance(d.get("source"), dict) else {},
            key=_opt_str(d.get("key")),
            configure=[str(a) for a in d.get("configure") or []],
            targets=[str(a) for a in d.get("targets") or []],
            series=d["series"] if isinstance(d.get("series"), dict) else None,
            cache_hit=bool(d.get("cache_hit", False)),
            log=_opt_str(d.get("log")),
            source_dir=_opt_str(d.get("source_dir")),
            compiler=_opt_str(d.get("compiler")),
            ccache=d["ccache"] if isinstance(d.get("ccache"), dict) else None,
            artifacts=d["artifacts"] if isinstance(d.get("artifacts"), dict) else None,
            qemu_version=_opt_str(d.get("qemu_version")),
            binary=_opt_str(d.get("binary")),
            error=_opt_str(d.get("error")),
            hint=_opt_str(d.get("hint")),
            log_tail=[str(x) for x in tail] if isinstance(tail, list) else [str(tail)],
            triage=TriageRecord.from_json(triage) if isinstance(triage, dict) else None,
            remedy_attempt=d["remedy_attempt"] if isinstance(d.get("remedy_attempt"), dict) else None,
            remedy_of=d["remedy_of"] if isinstance(d.get("remedy_of"), dict) else None,
            incremental=d["incremental"] if isinstance(d.get("incremental"), dict) else None,
            extra={k: v for k, v in d.items() if k not in known},
        )

    @classmethod
    def not_run(cls, cell: str, why: str) -> BuildRecord:
        """Stands in for a planned build that never started."""
        tree, _, profile = cell.partition("/")
        return cls(
            cell=cell, tree=tree, kind="", profile=profile, verdict=Verdict.NOT_RUN, stage=None, error=why
        )

    @classmethod
    def unreadable(cls, cell: str, why: str) -> BuildRecord:
        """Stands in for a ``build.json`` that is missing or corrupt."""
        return cls(cell=cell, tree="", kind="", profile="", verdict=Verdict.ERROR, stage=None, error=why)


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)
