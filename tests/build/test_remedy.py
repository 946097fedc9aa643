"""--remedy auto: a triage change applied to a profile, the retry, and both attempts in the run's records.

The last test is the real thing: QEMU 10.2.2 with a patch that adds an unused static function to a header
the first compiled file includes, built with --enable-werror (fails in seconds), classified, then rebuilt
with --disable-werror (compile flags equal to the cached lean build's, so ccache makes it quick).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import REPO, run_harness

from harness.build import batch
from harness.build.builder import BuildOutcome
from harness.build.remedy import RemedyNotApplicable, apply_change, derived_cell
from harness.config.cells import BuildCell
from harness.config.repo import CONTAINERS_DIR
from harness.config.schema import Profile, Tree
from harness.live.vocab import Stage, Verdict
from harness.store.build_record import BuildRecord
from harness.store.runs import RunStore

LEAN = ["--target-list=x86_64-softmmu", "--disable-docs", "--disable-install-blobs", "--disable-download"]


def test_disable_werror_replaces_enable_werror() -> None:
    flags = ["--target-list=x86_64-softmmu", "--enable-werror", "--extra-cflags=-Wextra"]
    out = apply_change(flags, {"add_configure": ["--disable-werror"]})
    assert out == ["--target-list=x86_64-softmmu", "--extra-cflags=-Wextra", "--disable-werror"]


def test_cflags_are_merged_into_one_extra_cflags() -> None:
    out = apply_change(["--extra-cflags=-g -Wextra"], {"add_cflags": ["-Wno-unused-parameter"]})
    assert out == ["--extra-cflags=-g -Wextra -Wno-unused-parameter"]
    assert apply_change([], {"add_cflags": ["-Wno-x"]}) == ["--extra-cflags=-Wno-x"]


def test_target_exclude_on_a_target_list_drops_the_target() -> None:
    change = {"add_configure": ["--target-list-exclude=loongarch64-softmmu"]}
    out = apply_change(["--target-list=x86_64-softmmu,loongarch64-softmmu"], change)
    assert out == ["--target-list=x86_64-softmmu"]  # configure refuses to mix the two options
    assert apply_change(["--disable-docs"], change) == [
        "--disable-docs",
        "--target-list-exclude=loongarch64-softmmu",
    ]
    with pytest.raises(RemedyNotApplicable, match="leaves no target"):
        apply_change(["--target-list=loongarch64-softmmu"], change)


def test_a_change_that_changes_nothing_is_not_applicable() -> None:
    with pytest.raises(RemedyNotApplicable):
        apply_change(["--disable-werror"], {"add_configure": ["--disable-werror"]})
    assert apply_change(["--disable-download", "--x"], {"remove_configure": ["--disable-download"]}) == [
        "--x"
    ]


def _cell(configure: list[str]) -> BuildCell:
    tree = Tree(kind="local", image="debian-trixie", path=".")
    return BuildCell(
        "t/werror", "t", tree, "werror", Profile(configure=configure, targets=["qemu-system-x86_64"])
    )


def test_derived_cell_has_its_own_name_and_flags() -> None:
    cell = _cell([*LEAN, "--enable-werror"])
    derived = derived_cell(cell, {"name": "disable-werror", "add_configure": ["--disable-werror"]})
    assert derived.id == "t/werror+disable-werror" and derived.profile_name == "werror+disable-werror"
    assert derived.profile is not None and derived.profile.configure == [*LEAN, "--disable-werror"]
    assert derived.profile.targets == ["qemu-system-x86_64"] and derived.tree is cell.tree
    odd = derived_cell(
        cell, {"name": "without--disable download", "remove_configure": ["--disable-download"]}
    )
    assert odd.profile_name == "werror+without-disable-download"


def test_fill_from_store_changes_the_tree_not_the_profile() -> None:
    cell = _cell(LEAN)
    derived = derived_cell(cell, {"name": "store", "fill_subprojects": "store"})
    assert derived.id == "t/werror+store" and derived.tree.fill_subprojects == "store"
    assert derived.profile is not None and derived.profile.configure == LEAN
    assert cell.tree.fill_subprojects is None  # the matrix's own tree is unchanged
    with pytest.raises(RemedyNotApplicable, match="already has fill_subprojects: store"):
        derived_cell(derived, {"name": "store", "fill_subprojects": "store"})


class FakeBuilder:
    """Fails every cell whose flags hold --enable-werror with gcc's -Werror output, passes the others.

    Triage is the real one: it runs after the builder (batch.run_builds), on the failing output."""

    WERROR = "../qobject/qlit.c:12:12: error: 'bait' defined but not used [-Werror=unused-function]"

    def __init__(self) -> None:
        self.built: list[str] = []
        self.jobs = 2
        self.engine = type("Engine", (), {"containers_dir": CONTAINERS_DIR})()

    def build(self, cell: BuildCell) -> BuildOutcome:
        self.built.append(cell.id)
        assert cell.profile is not None
        record = BuildRecord(cell.id, cell.tree_name, "local", cell.profile_name, Verdict.PASS, None)
        if "--enable-werror" in cell.profile.configure:
            record.verdict, record.stage = Verdict.FAIL, Stage.COMPILE
            return BuildOutcome(
                cell.id, record, None, None, f"[1/2] cc ...\n{self.WERROR}\nninja: build stopped"
            )
        return BuildOutcome(cell.id, record, None, None)


def test_remedy_auto_retries_once_and_keeps_both_records(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    store = RunStore(tmp_path / "run")
    builder = FakeBuilder()
    cells = [_cell([*LEAN, "--enable-werror"])]
    outcomes = batch.run_builds(builder, store, cells, "auto")  # type: ignore[arg-type]
    assert builder.built == ["t/werror", "t/werror+disable-werror"]
    assert outcomes["t/werror"].ok and outcomes["t/werror"].cell_id == "t/werror+disable-werror"
    records = {k: r.to_json() for k, r in store.load_builds().items()}
    assert set(records) == {"t/werror", "t/werror+disable-werror"}
    assert records["t/werror"]["verdict"] == "fail"
    assert records["t/werror"]["triage"]["rule"] == "werror"  # triage ran after the builder
    assert records["t/werror"]["remedy_attempt"]["cell"] == "t/werror+disable-werror"
    assert records["t/werror"]["remedy_attempt"]["verdict"] == "pass"
    assert records["t/werror+disable-werror"]["remedy_of"]["rule"] == "werror"
    assert records["t/werror+disable-werror"]["remedy_of"]["configure_before"][-1] == "--enable-werror"
    out = capsys.readouterr().out
    assert "cause: warning treated as error" in out and "REMEDIED t/werror -> t/werror+disable-werror" in out


class OldConfigureBuilder(FakeBuilder):
    """Like FakeBuilder, and its configure also rejects --disable-download (a 6.2-era tree)."""

    def build(self, cell: BuildCell) -> BuildOutcome:
        assert cell.profile is not None
        if "--enable-werror" not in cell.profile.configure and "--disable-download" in cell.profile.configure:
            self.built.append(cell.id)
            record = BuildRecord(
                cell.id, cell.tree_name, "local", cell.profile_name, Verdict.FAIL, Stage.CONFIGURE
            )
            return BuildOutcome(cell.id, record, None, None, "ERROR: unknown option --disable-download")
        return super().build(cell)


def test_remedies_chain_until_the_build_passes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = RunStore(tmp_path / "run")
    builder = OldConfigureBuilder()
    outcomes = batch.run_builds(builder, store, [_cell([*LEAN, "--enable-werror"])], "auto")  # type: ignore[arg-type]
    final = "t/werror+disable-werror+without-disable-download"
    assert builder.built == ["t/werror", "t/werror+disable-werror", final]
    assert outcomes["t/werror"].ok and outcomes["t/werror"].cell_id == final
    records = {k: r.to_json() for k, r in store.load_builds().items()}
    assert records["t/werror+disable-werror"]["remedy_attempt"]["cell"] == final
    assert records[final]["remedy_of"]["rule"] == "unknown-option"
    assert "--disable-download" not in records["t/werror+disable-werror"]["remedy_attempt"]["configure"]
    assert f"REMEDIED t/werror -> {final}" in capsys.readouterr().out


def test_remedy_off_does_not_retry(tmp_path: Path) -> None:
    builder = FakeBuilder()
    outcomes = batch.run_builds(builder, RunStore(tmp_path), [_cell(["--enable-werror"])])  # type: ignore[arg-type]
    assert builder.built == ["t/werror"] and not outcomes["t/werror"].ok


def test_cli_takes_remedy(tmp_path: Path) -> None:
    bad = run_harness("build", "--remedy", "sometimes")
    assert bad.returncode == 2 and "invalid choice: 'sometimes'" in bad.stderr


# --------------------------------------------------------------------------------------------------
# End to end, in containers, on the shared cache.

BAIT_HEADER = "include/qobject/qlit.h"
BAIT = (
    "\n/* cpr-harness test bait: unused, so -Werror=unused-function stops the build */\n"
    "static int cpr_harness_werror_bait(void)\n{\n    return 0;\n}\n"
)
MATRIX = """\
trees:
  upstream-10.2:
    kind: debian-source
    image: debian-trixie
    version: "1:10.2.2+ds-1"
    patches: qemu-ds-bait
profiles:
  werror:
    configure: [--target-list=x86_64-softmmu, --enable-werror, --disable-docs, --disable-install-blobs,
                --disable-download]
    targets: [qemu-system-x86_64]
scenarios: [boot]
"""


def _bait_patch(tree: Path) -> str:
    import difflib

    old = (tree / BAIT_HEADER).read_text()
    new = old.replace("#endif", BAIT + "#endif", 1)
    lines = difflib.unified_diff(
        old.splitlines(True), new.splitlines(True), f"a/{BAIT_HEADER}", f"b/{BAIT_HEADER}"
    )
    return "".join(lines)


@pytest.mark.docker
@pytest.mark.slow
def test_deliberate_werror_failure_is_classified_and_remedied(
    tmp_path: Path, cache_dir: Path, qemu_10_2_tree: Path, capsys: pytest.CaptureFixture
) -> None:
    from harness.build.builder import Builder
    from harness.config import cells as mx
    from harness.config.matrix import load_matrix
    from harness.engine.containers import Engine
    from harness.report.render import render_run

    root = tmp_path / "repo"
    (root / "matrices").mkdir(parents=True)
    (root / "containers").symlink_to(REPO / "containers")
    queue = root / "patches" / "qemu-ds-bait"
    shutil.copytree(REPO / "patches" / "qemu-ds", queue)
    (queue / "0002-werror-bait.patch").write_text(_bait_patch(qemu_10_2_tree))
    with (queue / "series").open("a") as series:
        series.write("0002-werror-bait.patch\n")
    matrix_path = root / "matrices" / "bait.yaml"
    matrix_path.write_text(MATRIX)
    matrix = load_matrix(matrix_path)
    builds, _ = mx.select(matrix, [])

    engine = Engine.connect(progress=print)
    builder = Builder(engine, cache_dir.resolve(), root / "patches", root, jobs=2, progress=print)
    store = RunStore(tmp_path / "reports" / "run")
    outcomes = batch.run_builds(builder, store, builds, "auto")
    out = capsys.readouterr().out

    records = {k: r.to_json() for k, r in store.load_builds().items()}
    first, retry = records["upstream-10.2/werror"], records["upstream-10.2/werror+disable-werror"]
    assert first["verdict"] == "fail" and first["stage"] == "compile", json.dumps(first)[-2000:]
    assert first["triage"]["rule"] == "werror"
    assert first["triage"]["cause"] == "warning treated as error: -Wunused-function"
    assert "cpr_harness_werror_bait" in first["triage"]["evidence"]
    assert first["remedy_attempt"]["verdict"] == "pass"
    assert [s["status"] for s in first["series"]["statuses"]] == ["applied", "applied"]
    assert retry["verdict"] == "pass", json.dumps(retry)[-3000:]
    assert retry["configure"][1] == "--disable-werror" or "--disable-werror" in retry["configure"]
    assert "--enable-werror" not in retry["configure"] and retry["key"] != first["key"]
    assert retry["remedy_of"]["cell"] == "upstream-10.2/werror"
    if not retry.get("cache_hit"):
        assert retry["ccache"]["hit_rate_pct"] >= 90, retry["ccache"]  # same flags as the cached lean build
    assert outcomes["upstream-10.2/werror"].ok
    assert "REMEDIED upstream-10.2/werror -> upstream-10.2/werror+disable-werror" in out
    summary = render_run(store.root)
    index = (store.root / "index.html").read_text()
    assert "upstream-10.2/werror+disable-werror" in index and "Remedy:" in index
    assert "upstream-10.2/werror" in summary.console


class SharingBuilder(FakeBuilder):
    """FakeBuilder that also records the ninja jobs each concurrent build got."""

    def __init__(self, jobs: int = 4, parent: SharingBuilder | None = None) -> None:
        super().__init__()
        self.jobs = jobs
        self.root = parent or self
        self.shares: list[int] = []

    def share(self, jobs: int, progress):  # type: ignore[no-untyped-def]
        child = SharingBuilder(jobs, self.root)
        child.built = self.root.built
        self.root.shares.append(jobs)
        return child


def test_build_slots_split_one_budget() -> None:
    assert batch.build_slots(2, 3, None) == (1, 2)  # 2 cores: one build at a time, -j2
    assert batch.build_slots(16, 3, None) == (3, 5)  # 16 cores, 3 cells: 3 at once, -j5 each
    assert batch.build_slots(16, 10, None) == (4, 4)
    assert batch.build_slots(2, 3, 2) == (2, 1) and batch.build_slots(2, 3, 8) == (2, 1)
    assert batch.build_slots(8, 1, 4) == (1, 8)


def test_parallel_builds_share_the_budget_and_keep_cells_apart(tmp_path: Path) -> None:
    builder = SharingBuilder(jobs=4)
    cells = [_cell(LEAN), _cell([*LEAN, "--enable-werror"])]
    cells[0] = BuildCell("a/lean", "a", cells[0].tree, "lean", cells[0].profile)
    lines: list[str] = []
    outcomes = batch.run_builds(builder, RunStore(tmp_path), cells, "auto", lines.append, parallel=2)  # type: ignore[arg-type]
    assert list(outcomes) == ["a/lean", "t/werror"]  # cell order, whatever finished first
    assert builder.shares == [2, 2] and sorted(builder.built) == [
        "a/lean",
        "t/werror",
        "t/werror+disable-werror",
    ]
    assert outcomes["t/werror"].cell_id == "t/werror+disable-werror"  # the remedy ran in its thread
    assert any(line.startswith("building 2 cells, 2 at a time, -j2 each") for line in lines)
    assert all(line.startswith(("[a/lean] ", "[t/werror] ", "building ")) for line in lines), lines
