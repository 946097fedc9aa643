"""The bisection record (``bisect.json``): one bisection of one cell over a range of commits, typed.

Written by :mod:`harness.bisect` after every step (so an interrupted bisection keeps what it learned),
read by the report (the bisection's page, the dashboard's list and the line beside a regression).

Where it lives: ``<run folder>/bisect/<cell folder>/`` holds ``bisect.json``, the page ``index.html``
and one folder per step, ``steps/<nn>-<commit12>/``, itself laid out like a run folder (``builds/<cell
folder>/build.json``, ``results/<cell folder>/result.json`` and the cell's logs). A standalone ``bisect``
command writes its run folder under ``reports/bisect/<run-id>/``; ``test --bisect auto`` writes into the
night's own run folder.

Step outcomes (``outcome``) and what ``git bisect`` was told:

==============  ===================================================================  ==========
outcome         meaning                                                              git bisect
==============  ===================================================================  ==========
``good``        built, and every run of the cell passed (a build cell: it built)      good
``bad``         built, and every run of the cell failed (a build cell: it failed)     bad
``broken``      a scenario cell's build failed: the commit cannot be judged           skip
``flaky``       the runs disagree (some passed, some did not): never blamed           skip
``unjudged``    every run ended ``error`` or ``unsupported``: QEMU could not be judged skip
==============  ===================================================================  ==========

Statuses (``status``): ``running``; ``found`` (``first_bad`` names the commit); ``ambiguous`` (only
skipped commits are left: ``candidates`` holds them); ``budget`` (the step budget ran out: ``candidates``
is the range left); ``invalid`` (the input did not hold, e.g. the cell passes at ``bad``: ``message``
says what); ``error`` (the infrastructure failed); ``interrupted``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

BISECT_FILE = "bisect.json"
PAGE_FILE = "index.html"
OUTCOMES = ("good", "bad", "broken", "flaky", "unjudged")
TERMS = {"good": "good", "bad": "bad", "broken": "skip", "flaky": "skip", "unjudged": "skip"}
STATUSES = ("running", "found", "ambiguous", "budget", "invalid", "error", "interrupted")


@dataclass
class Commit:
    """One commit as a maintainer reads it."""

    commit: str
    subject: str = ""
    author: str = ""
    date: str = ""  # ISO 8601, the author date

    @property
    def short(self) -> str:
        return self.commit[:12]

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, d: Any) -> Commit:
        if not isinstance(d, dict) or not d.get("commit"):
            raise ValueError("a commit must be an object with 'commit'")
        return cls(**{f.name: str(d.get(f.name) or "") for f in fields(cls)})


@dataclass
class BisectStep:
    """One commit tested: its build, the cell's runs, and what the bisection concluded from them."""

    number: int
    commit: Commit
    role: str  # "bad" (the endpoint, checked first), "step" (chosen by git bisect), "good" (confirmation)
    outcome: str = ""  # one of OUTCOMES ("" while it runs)
    build: dict[str, Any] = field(default_factory=dict)  # verdict, stage, cache_hit, seconds, key, ...
    runs: list[str] = field(default_factory=list)  # the verdict of each run of the cell, in order
    check: str = ""  # the first failed check of a failing run ("name: observed")
    reason: str = ""  # why this outcome, in one line
    seconds: float = 0.0  # the whole step: build and runs
    folder: str = ""  # the step's folder, relative to the bisection's folder

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["commit"] = self.commit.to_json()
        return out

    @classmethod
    def from_json(cls, d: Any) -> BisectStep:
        if not isinstance(d, dict):
            raise ValueError("a bisection step must be a JSON object")
        build = d.get("build")
        runs = d.get("runs")
        return cls(
            number=int(d.get("number") or 0),
            commit=Commit.from_json(d.get("commit")),
            role=str(d.get("role") or "step"),
            outcome=str(d.get("outcome") or ""),
            build=dict(build) if isinstance(build, dict) else {},
            runs=[str(r) for r in runs] if isinstance(runs, list) else [],
            check=str(d.get("check") or ""),
            reason=str(d.get("reason") or ""),
            seconds=float(d.get("seconds") or 0.0),
            folder=str(d.get("folder") or ""),
        )

    @property
    def built(self) -> bool:
        """Whether this step ran a build (not a cache hit, not refused before building)."""
        return bool(self.build.get("verdict")) and not self.build.get("cache_hit", False)


@dataclass
class BisectRecord:
    """One bisection (``bisect.json``)."""

    cell: str  # the cell bisected (scenario, upgrade or build cell id)
    kind: str  # "scenario" | "upgrade" | "build"
    tree: str  # the tree whose commits are bisected (an upgrade's target)
    good: Commit
    bad: Commit
    good_ref: str = ""
    bad_ref: str = ""
    commits: int = 0  # commits in good..bad (the candidates for the first bad one)
    runs: int = 3  # runs of the cell per step
    max_steps: int | None = None
    matrix: str = ""
    status: str = "running"
    message: str = ""
    first_bad: Commit | None = None
    first_bad_check: str = ""  # how the first bad commit fails (its step's check)
    candidates: list[Commit] = field(default_factory=list)  # ambiguous / budget: the range left
    steps: list[BisectStep] = field(default_factory=list)
    started_at: str = ""
    finished_at: str = ""
    reproduce: str = ""
    origin: str = ""  # "command" | "auto" (a night's regression), with its baseline run for auto
    fixed: dict[str, str] = field(default_factory=dict)  # an upgrade's source build: cell, key, qemu_version

    @property
    def done(self) -> bool:
        return self.status not in ("running",)

    def step_budget_used(self) -> int:
        return len(self.steps)

    def builds(self) -> int:
        """Steps that ran a build (cache hits and refusals excluded)."""
        return sum(1 for s in self.steps if s.built)

    def summary(self) -> str:
        """One line: the answer, or why there is none."""
        if self.status == "found" and self.first_bad is not None:
            fb = self.first_bad
            check = f" ({self.first_bad_check})" if self.first_bad_check else ""
            return f"first bad commit {fb.short} {fb.subject!r}{check}"
        if self.status in ("ambiguous", "budget"):
            why = "only skipped commits left" if self.status == "ambiguous" else "step budget used up"
            return (
                f"{why}: the first bad commit is one of {len(self.candidates)}: "
                + ", ".join(c.short for c in self.candidates[:8])
                + (" ..." if len(self.candidates) > 8 else "")
            )
        return f"{self.status}: {self.message}" if self.message else self.status

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Commit):
                value = value.to_json()
            elif f.name == "candidates":
                value = [c.to_json() for c in value]
            elif f.name == "steps":
                value = [s.to_json() for s in value]
            out[f.name] = value
        return out

    @classmethod
    def from_json(cls, d: Any) -> BisectRecord:
        """Read a ``bisect.json`` object; ValueError (or KeyError/TypeError) when it is not one."""
        if not isinstance(d, dict):
            raise ValueError("a bisection record must be a JSON object")
        status = str(d.get("status") or "error")
        first_bad = d.get("first_bad")
        max_steps = d.get("max_steps")
        return cls(
            cell=str(d["cell"]),
            kind=str(d.get("kind") or "scenario"),
            tree=str(d.get("tree") or ""),
            good=Commit.from_json(d.get("good")),
            bad=Commit.from_json(d.get("bad")),
            good_ref=str(d.get("good_ref") or ""),
            bad_ref=str(d.get("bad_ref") or ""),
            commits=int(d.get("commits") or 0),
            runs=int(d.get("runs") or 1),
            max_steps=int(max_steps) if isinstance(max_steps, int) else None,
            matrix=str(d.get("matrix") or ""),
            status=status if status in STATUSES else "error",
            message=str(d.get("message") or ""),
            first_bad=Commit.from_json(first_bad) if isinstance(first_bad, dict) else None,
            first_bad_check=str(d.get("first_bad_check") or ""),
            candidates=[Commit.from_json(c) for c in d.get("candidates") or [] if isinstance(c, dict)],
            steps=[BisectStep.from_json(s) for s in d.get("steps") or []],
            started_at=str(d.get("started_at") or ""),
            finished_at=str(d.get("finished_at") or ""),
            reproduce=str(d.get("reproduce") or ""),
            origin=str(d.get("origin") or ""),
            fixed={str(k): str(v) for k, v in (d.get("fixed") or {}).items()}
            if isinstance(d.get("fixed"), dict)
            else {},
        )
