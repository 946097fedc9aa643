"""Front door of cpr-harness. Sessions only call ``python -m harness ...`` (or pytest / ruff).

    nox -s build test                         # default matrix: build upstream QEMU, run every scenario
    nox -s build -- --matrix matrices/smoke.yaml --cells 'debian-11.1/*'
    nox -s bisect -- --matrix M --cell C --good G --bad B   # the commit that broke cell C
    nox -s selftest                           # our own tests (what .ci/run runs)

Posargs are passed to the harness. ``build`` and ``test`` of one nox invocation share a run folder
under ``reports/`` (CPR_RUN_ID).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "selftest"]

RUN_ID = os.environ.get("CPR_RUN_ID") or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _install(session: nox.Session, *extras: str) -> None:
    session.install("-e", f".[{','.join(extras)}]" if extras else ".")


def _pytest(session: nox.Session, marker: str) -> None:
    """The tests of one pytest marker expression (extra arguments after `--` go to pytest)."""
    _install(session, "test")
    session.run("python", "-m", "pytest", "-m", marker, *(session.posargs or ["-ra"]))


def _harness(session: nox.Session, command: str) -> None:
    _install(session)
    session.run("python", "-m", "harness", command, *session.posargs, env={"CPR_RUN_ID": RUN_ID})


@nox.session
def build(session: nox.Session) -> None:
    """Build the selected trees in containers (cache hits are not rebuilt)."""
    _harness(session, "build")


@nox.session
def test(session: nox.Session) -> None:
    """Run the selected scenario cells on what was built (builds first when needed)."""
    _harness(session, "test")


@nox.session
def bisect(session: nox.Session) -> None:
    """Find the commit that broke a cell: -- --cell C --good G --bad B [--matrix M] [--runs 3]."""
    _harness(session, "bisect")


@nox.session
def report(session: nox.Session) -> None:
    """Render reports from stored results only (no Docker, no QEMU)."""
    _harness(session, "report")


@nox.session
def provision(session: nox.Session) -> None:
    """Install and start a Docker engine (root on Debian/Ubuntu); idempotent."""
    _harness(session, "provision")


@nox.session
def selftest(session: nox.Session) -> None:
    """The harness's own tests: unit + integration on the real engine and real QEMU (faults apart)."""
    _pytest(session, "not faults and not devices and not regressions and not bisection")


@nox.session
def faults(session: nox.Session) -> None:
    """Faults injected into real runs (engine stopped, disk full, SIGINT, bad input): verdicts, no leaks."""
    _pytest(session, "faults")


@nox.session
def devices(session: nox.Session) -> None:
    """The Linux guest on every machine profile in every mode on Debian's QEMU 11.1 (a few minutes)."""
    _pytest(session, "devices")


@nox.session
def regressions(session: nox.Session) -> None:
    """The reverted-fix corpus: 10.2.2 with one CPR fix reverted per tree, each caught by its check, the
    control passing (matrices/regressions.yaml: seven builds, one with ASan, and 44 cells)."""
    _pytest(session, "regressions")


@nox.session
def bisection(session: nox.Session) -> None:
    """The real bisection test: a history of 44 commits made from QEMU 10.2.2, each step built and run."""
    _pytest(session, "bisection")


@nox.session
def matrix(session: nox.Session) -> None:
    """The selected cells as a CI job matrix: -- --format github|gitlab|json [--matrix M] [--cells P...]."""
    _install(session)
    session.run("python", "-m", "harness", "matrix", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark of bench/ on real builds and cells (an hour or more on 2 cores: run it on a quiet
    machine); appends the figures to bench/RESULTS.md. `nox -s bench -- scenario_bench` runs one."""
    _install(session)
    default = ["scenario_bench", "pause_stats", "pause_ram", "build_bench", "build_parallel", "guest_bench"]
    default += ["bisect_bench"]
    scripts = session.posargs or default
    for script in scripts:
        session.run("python", f"bench/{script.removesuffix('.py')}.py")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (style), import-linter (the layers and the container boundary), mypy --strict (types)."""
    _install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", "harness", "tests", "noxfile.py", "bench")
    session.run("lint-imports")
    session.run("mypy")


@nox.session
def detect(session: nox.Session) -> None:
    """Detection power: seeded bugs x modes on real QEMU, then clean repetitions (0 false alarms allowed).

    nox -s detect -- --clean-runs 20 --jobs 2 [--image qemu-trixie-backports] [--out DIR]"""
    _install(session)
    session.run("python", "-m", "harness", "detect", *(session.posargs or ["--jobs", "2"]))
