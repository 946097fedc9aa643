"""Command line: ``python -m harness {list,matrix,build,test,bisect,report,detect,provision,store} ...``.

Exit codes: 0 all selected cells passed (or were unsupported); 1 some cell failed or errored; 2 a user
error (bad matrix, selector matching nothing, ...); 3 an infrastructure error (no Docker engine, disk
full where results are written, ...); 70 a bug of the harness; 130 interrupted. Errors print one
message and a fix, never a traceback (the exception tree is documented in :mod:`harness.errors`).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from harness.config.repo import DEFAULT_MATRIX, MATRICES_DIR, REPORTS_DIR, cache_dir
from harness.errors import ConfigError, HarnessError

if TYPE_CHECKING:
    from harness.pipeline import RunOptions


def _say(text: str) -> None:
    """Print one line of progress. When the reader of stdout has gone (``list | head``), the rest of the
    output is dropped quietly and the command goes on: what it writes to disk is not cut short."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        _silence_stdout()


def _count(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer between ``low`` and ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value

    return parse


def _selection_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--matrix", type=Path, default=DEFAULT_MATRIX, help="matrix YAML file")
    cmd.add_argument(
        "--cells",
        nargs="+",
        default=[],
        metavar="PATTERN",
        help="fnmatch patterns over cell ids, e.g. 'upstream-10.2/*'",
    )


def _window(text: str) -> int:
    """``--history N``: a whole number of runs, at least 1 (this run)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of runs (1 or more)")
    return value


def _history_arg(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--history",
        type=_window,
        default=14,  # harness.report.trends.DEFAULT_WINDOW (not imported here: the CLI starts light)
        metavar="N",
        help="trends over the last N runs of the reports folder, this one included (default 14)",
    )


def _run_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--cache", type=Path, default=cache_dir(), help="sources, builds, ccache (default .cache)"
    )
    cmd.add_argument("--reports", type=Path, default=REPORTS_DIR, help="run folders")
    cmd.add_argument(
        "--run-id",
        default=os.environ.get("CPR_RUN_ID"),
        help="run folder name (shared by `build` and `test` of one nox invocation)",
    )
    cmd.add_argument(
        "--build-jobs",
        type=_count(1, 1024),
        default=None,
        help="ninja jobs in total, shared by builds (default: cores)",
    )
    cmd.add_argument(
        "--parallel-builds",
        type=_count(1, 64),
        default=None,
        help="build cells at once, sharing --build-jobs (default: one per 4 jobs)",
    )
    cmd.add_argument(
        "--remedy",
        choices=["auto", "off"],
        default="off",
        help="auto: retry a failed build once with the triage rule's suggested profile change "
        "(a derived cell <tree>/<profile>+<remedy>, reported beside the failed one)",
    )
    cmd.add_argument(
        "--jobs", type=_count(1, 64), default=1, help="scenario cells run at once, each in its own container"
    )
    cmd.add_argument(
        "--repeat",
        type=_count(1, 1000),
        default=1,
        help="run each scenario cell N times in its container: every pause is kept, the cell fails if any "
        "repetition fails; a pause regression needs >= 5 on both runs",
    )
    cmd.add_argument(
        "--bisect",
        choices=["auto", "off"],
        default="off",
        help="auto: bisect each regression since the baseline run on a git tree, between the commits both "
        "runs built (the answer goes beside the regression on the dashboard)",
    )
    cmd.add_argument(
        "--bisect-steps",
        type=_count(1, 1000),
        default=12,
        metavar="N",
        help="with --bisect auto: steps (a commit built and its cell run) for all bisections of the run",
    )
    cmd.add_argument(
        "--bisect-runs", type=_count(1, 100), default=3, metavar="N", help="runs of the cell per step (3)"
    )
    _history_arg(cmd)


def _bisect_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--matrix", type=Path, default=DEFAULT_MATRIX, help="matrix YAML file")
    cmd.add_argument("--cell", required=True, help="a scenario, upgrade or build cell id of the matrix")
    cmd.add_argument("--good", required=True, help="a commit (branch, tag, id) where the cell passes")
    cmd.add_argument("--bad", required=True, help="a newer commit where it fails")
    cmd.add_argument(
        "--runs",
        type=_count(1, 100),
        default=3,
        help="runs of the cell per step; a step whose runs disagree is flaky: skipped, never blamed (3)",
    )
    cmd.add_argument(
        "--max-steps", type=_count(1, 1000), default=None, metavar="N", help="stop after N steps"
    )
    cmd.add_argument(
        "--cache", type=Path, default=cache_dir(), help="sources, builds, ccache (default .cache)"
    )
    cmd.add_argument(
        "--reports",
        type=Path,
        default=REPORTS_DIR,
        help="run folders (the bisection goes to <reports>/bisect/)",
    )
    cmd.add_argument("--run-id", default=None, help="run folder name under <reports>/bisect/")
    cmd.add_argument("--build-jobs", type=_count(1, 1024), default=None, help="ninja jobs (default: cores)")
    cmd.add_argument(
        "--keep-build-dirs",
        action="store_true",
        help="keep the steps' build directories (default: removed at the end; records and binaries stay)",
    )


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in the harness's form: ``error: ...`` and a fix, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message}\n  fix: see `{self.prog} --help`\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m harness", description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _selection_args(sub.add_parser("list", help="print the expanded cells"))
    for name, text in (
        ("build", "build the selected trees"),
        ("test", "build if needed, then run scenario cells"),
    ):
        cmd = sub.add_parser(name, help=text)
        _selection_args(cmd)
        _run_args(cmd)
    _bisect_args(
        sub.add_parser(
            "bisect", help="find the commit that broke a cell: git bisect, each step built and run"
        )
    )
    mat = sub.add_parser(
        "matrix", help="print the selected cells as a CI job matrix (one job per build cell)"
    )
    _selection_args(mat)
    mat.add_argument(
        "--format",
        choices=["github", "gitlab", "json"],
        default="json",
        help="github: strategy.matrix JSON; gitlab: child-pipeline YAML; json: shard list",
    )
    rep = sub.add_parser("report", help="render HTML, JUnit and JSON from stored results only")
    rep.add_argument("--reports", type=Path, default=REPORTS_DIR, help="run folders")
    rep.add_argument("--run", default="latest", help="run folder name under --reports (default: latest)")
    rep.add_argument("--baseline", type=Path, default=None, help="compare with this run folder")
    _history_arg(rep)
    rep.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        default=[],
        metavar="DIR",
        help="merge these run folders (CI shards), render",
    )
    rep.add_argument(
        "--matrix",
        type=Path,
        default=None,
        help="with --merge: the matrix the shards ran; its cells that no shard holds show as not run",
    )
    rep.add_argument(
        "--cells", nargs="+", default=[], metavar="PATTERN", help="with --merge --matrix: the selection"
    )
    det = sub.add_parser("detect", help="seeded live-update bugs on real QEMU: each must be caught")
    det.add_argument(
        "--image", default="qemu-trixie-backports", help="image name (containers/<name>) or a tag"
    )
    det.add_argument(
        "--clean-runs", type=_count(0, 10000), default=20, help="clean repetitions per mode (default 20)"
    )
    det.add_argument("--jobs", type=_count(1, 64), default=1, help="runs in parallel (default 1)")
    det.add_argument("--out", type=Path, default=None, help="results folder (default reports/detect-<time>)")
    det.add_argument("--faults", default="", help="comma-separated fault keys (default: all)")
    det.add_argument("--modes", default="", help="comma-separated modes (default: all)")
    det.add_argument("--accel", choices=("tcg", "kvm"), default="tcg")
    det.add_argument(
        "--machines", default="", help="comma-separated machine profiles (default: every one of --matrix)"
    )
    det.add_argument(
        "--matrix", type=Path, default=MATRICES_DIR / "devices.yaml",
        help="where the machine profiles are defined (default matrices/devices.yaml)",
    )  # fmt: skip
    det.add_argument(
        "--cache",
        type=Path,
        default=cache_dir(),
        help="the cache of the assembled Linux guest (default .cache)",
    )
    sub.add_parser("provision", help="install and start a Docker engine (root, Debian/Ubuntu)")
    sto = sub.add_parser("store", help="the offline subproject store: list it, or feed it from matrix trees")
    sto.add_argument(
        "action", choices=["list", "add"], help="list: the folders kept; add: fetch trees into it"
    )
    sto.add_argument("--matrix", type=Path, default=DEFAULT_MATRIX, help="matrix YAML file (add)")
    sto.add_argument(
        "--trees", nargs="+", default=[], metavar="NAME", help="trees to fetch (add; default all)"
    )
    sto.add_argument(
        "--cache",
        type=Path,
        default=cache_dir(),
        help="the cache holding the store (default .cache)",
    )
    return parser


def _options(args: argparse.Namespace) -> RunOptions:
    from harness.pipeline import RunOptions

    return RunOptions(
        matrix=args.matrix,
        cells=list(args.cells),
        cache=args.cache,
        reports=args.reports,
        run_id=args.run_id,
        build_jobs=args.build_jobs,
        remedy=args.remedy,
        jobs=args.jobs,
        history=args.history,
        repeat=args.repeat,
        parallel_builds=args.parallel_builds,
        bisect=args.bisect,
        bisect_steps=args.bisect_steps,
        bisect_runs=args.bisect_runs,
    )


def _list(args: argparse.Namespace) -> int:
    from harness import pipeline

    for line in pipeline.list_lines(pipeline.select(args.matrix, args.cells)):
        _say(line)
    return 0


def _matrix(args: argparse.Namespace) -> int:
    from harness import pipeline

    sys.stdout.write(pipeline.job_matrix(pipeline.select(args.matrix, args.cells), args.format))
    return 0


def _build(args: argparse.Namespace) -> int:
    from harness import pipeline

    return pipeline.build(_options(args), say=_say).exit_code


def _test(args: argparse.Namespace) -> int:
    from harness import pipeline

    return pipeline.test(_options(args), say=_say).exit_code


def _bisect(args: argparse.Namespace) -> int:
    from harness.bisect.session import BisectOptions, bisect

    options = BisectOptions(
        cell=args.cell,
        good=args.good,
        bad=args.bad,
        matrix=args.matrix,
        runs=args.runs,
        max_steps=args.max_steps,
        cache=args.cache,
        reports=args.reports,
        run_id=args.run_id,
        build_jobs=args.build_jobs,
        keep_build_dirs=args.keep_build_dirs,
    )
    return bisect(options, say=_say).exit_code


def _report(args: argparse.Namespace) -> int:
    from harness import pipeline

    if (args.matrix or args.cells) and not args.merge:
        raise ConfigError("report: --matrix and --cells go with --merge", hint="add --merge DIR...")
    expected = pipeline.select(args.matrix, args.cells) if args.matrix else None
    summary = pipeline.report(
        args.reports, args.run, args.baseline, args.merge, expected, say=_say, window=args.history
    )
    return pipeline.exit_code_of(summary)


def _detect(args: argparse.Namespace) -> int:
    from harness.run import detect

    return detect.main(args, say=_say)


def _provision(args: argparse.Namespace) -> int:
    from harness.engine.provision import provision

    provision(progress=_say)
    return 0


def _store(args: argparse.Namespace) -> int:
    from harness import pipeline

    if args.action == "list":
        for line in pipeline.store_lines(args.cache):
            _say(line)
        return 0
    options = pipeline.RunOptions(matrix=args.matrix, cache=args.cache)
    return pipeline.store_add(options, list(args.trees), say=_say)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "list": _list,
    "matrix": _matrix,
    "build": _build,
    "test": _test,
    "bisect": _bisect,
    "report": _report,
    "detect": _detect,
    "provision": _provision,
    "store": _store,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return COMMANDS[args.command](args)
    except HarnessError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  fix: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `python -m harness list | head`: the reader left; end quietly
        _silence_stdout()
        return 0
    except OSError as exc:  # the reports or cache folder: full disk, permissions, read-only mount
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        print("  fix: free space or choose writable folders with --reports / --cache", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print(
            "interrupted: containers and QEMU processes of this run were removed; results written so far "
            "are kept",
            file=sys.stderr,
        )
        return 130


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so that the interpreter's final flush is quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
