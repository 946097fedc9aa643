"""Command line: ``python -m harness {list,build,test,provision} [--matrix M] [--cells PATTERN ...]``.

Exit codes: 0 all selected cells passed (or were unsupported); 1 some cell failed or errored;
2 a user error (bad matrix, selector matching nothing, ...); 3 an infrastructure error (no Docker
engine, ...); 130 interrupted. User errors print one message and a fix, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from harness.errors import HarnessError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MATRIX = REPO_ROOT / "matrices" / "default.yaml"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("list", "print the expanded cells"),
        ("build", "build the selected trees"),
        ("test", "build if needed, then run the selected scenario cells"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--matrix", type=Path, default=DEFAULT_MATRIX, help="matrix YAML file")
        cmd.add_argument(
            "--cells",
            nargs="+",
            default=[],
            metavar="PATTERN",
            help="fnmatch patterns over cell ids, e.g. 'upstream-10.2/*'",
        )
        if name != "list":
            cmd.add_argument(
                "--cache",
                type=Path,
                default=Path(os.environ.get("CPR_HARNESS_CACHE", REPO_ROOT / ".cache")),
                help="sources, builds, ccache (default .cache)",
            )
            cmd.add_argument("--reports", type=Path, default=REPO_ROOT / "reports", help="run folders")
            cmd.add_argument(
                "--run-id",
                default=os.environ.get("CPR_RUN_ID"),
                help="run folder name (shared by `build` and `test` of one nox invocation)",
            )
            cmd.add_argument("--build-jobs", type=int, default=None, help="ninja -j (default: cores)")
            cmd.add_argument(
                "--remedy",
                choices=["auto", "off"],
                default="off",
                help="auto: retry a failed build once with the triage rule's suggested profile change "
                "(a derived cell <tree>/<profile>+<remedy>, reported beside the failed one)",
            )
            cmd.add_argument(
                "--jobs",
                type=int,
                default=1,
                help="scenario cells run at once, each in its own container (default 1)",
            )
    mat = sub.add_parser(
        "matrix", help="print the selected cells as a CI job matrix (one job per build cell)"
    )
    mat.add_argument("--matrix", type=Path, default=DEFAULT_MATRIX, help="matrix YAML file")
    mat.add_argument(
        "--cells", nargs="+", default=[], metavar="PATTERN", help="fnmatch patterns over cell ids"
    )
    mat.add_argument(
        "--format",
        choices=["github", "gitlab", "json"],
        default="json",
        help="github: strategy.matrix JSON; gitlab: child-pipeline YAML; json: shard list",
    )
    rep = sub.add_parser("report", help="render HTML, JUnit and JSON from stored results only")
    rep.add_argument("--reports", type=Path, default=REPO_ROOT / "reports", help="run folders")
    rep.add_argument("--run", default="latest", help="run folder name under --reports (default: latest)")
    rep.add_argument("--baseline", type=Path, default=None, help="compare with this run folder")
    rep.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        default=[],
        metavar="DIR",
        help="merge these run folders (CI shards) into a new run, then render it",
    )
    sub.add_parser("provision", help="install and start a Docker engine (root, Debian/Ubuntu)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if args.command == "provision":
            from harness.provision import provision

            provision()
            return 0
        from harness import commands

        return commands.COMMANDS[args.command](args)
    except HarnessError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  fix: {exc.hint}", file=sys.stderr)
        return exc.exit_code
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


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
