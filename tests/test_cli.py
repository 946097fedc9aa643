"""User errors end in one clear message and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_harness

from harness.engine.bootstrap import host_debian_mirror


def test_list_default_matrix() -> None:
    done = run_harness("list")
    assert done.returncode == 0, done.stderr
    assert "build    upstream-10.2/lean" in done.stdout
    assert "scenario upstream-10.2/lean/cpr-exec/tcg" in done.stdout


def test_bad_yaml_key_names_file_line_and_key(tmp_path: Path) -> None:
    matrix = Path(__file__).resolve().parent.parent / "matrices" / "smoke.yaml"
    bad = tmp_path / "_test_bad.yaml"  # never written into the repository's matrices/
    bad.write_text(
        matrix.read_text().replace(
            "    binary: /usr/bin/qemu-system-x86_64\n",
            "    binary: /usr/bin/qemu-system-x86_64\n    colour: red\n",
            1,
        )
    )
    done = run_harness("list", "--matrix", str(bad))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "_test_bad.yaml:" in done.stderr and "colour" in done.stderr


def test_selector_matching_nothing_lists_cells() -> None:
    done = run_harness("list", "--cells", "no-such-tree/*")
    assert done.returncode == 2
    assert "no-such-tree/*" in done.stderr and "upstream-10.2/lean" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_matrix_file() -> None:
    done = run_harness("list", "--matrix", "matrices/does-not-exist.yaml")
    assert done.returncode == 2 and "does-not-exist.yaml" in done.stderr and "Traceback" not in done.stderr


def test_no_docker_engine_is_an_infra_error(tmp_path: Path) -> None:
    done = run_harness(
        "build",
        "--matrix",
        "matrices/smoke.yaml",
        "--cache",
        str(tmp_path / "c"),
        "--reports",
        str(tmp_path / "r"),
        env={"DOCKER_HOST": f"unix://{tmp_path}/nope.sock"},
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "no Docker engine answers" in done.stderr and "nox -s provision" in done.stderr
    assert "Traceback" not in done.stderr


def test_host_debian_mirror_reads_deb822_and_one_line(tmp_path: Path) -> None:
    release = tmp_path / "os-release"
    release.write_text("ID=debian\nVERSION_CODENAME=bookworm\n")
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb deb-src\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n"
    )
    assert host_debian_mirror(release, apt) == "http://mirror.example/debian"
    (apt / "sources.list.d" / "debian.sources").unlink()
    (apt / "sources.list").write_text("deb [arch=amd64] http://other.example/debian bookworm main\n")
    assert host_debian_mirror(release, apt) == "http://other.example/debian"
    (apt / "sources.list").write_text("# nothing\n")
    assert host_debian_mirror(release, apt) is None


def test_report_merges_shards_and_rerenders_from_stored_results(tmp_path: Path) -> None:
    data = Path(__file__).resolve().parent / "data" / "runs"
    shards = []
    for name in ("20261126T020000Z", "real-20261126T130929Z"):
        shutil.copytree(data / name, tmp_path / "shards" / name)
        shards.append(str(tmp_path / "shards" / name))
    merged = run_harness("report", "--reports", str(tmp_path / "out"), "--merge", *shards)
    assert merged.returncode == 1, merged.stdout + merged.stderr  # the shards hold failed cells
    assert "Traceback" not in merged.stderr
    run = (tmp_path / "out" / "latest").resolve()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["upstream-10.2/lean/cpr-exec/tcg"] == "pass"
    assert summary["upgrade/debian-10.0-to-upstream-10.2/cpr-exec/tcg"] == "unsupported"
    again = run_harness("report", "--reports", str(tmp_path / "out"))  # latest, from stored results only
    assert again.returncode == 1 and (run / "index.html").is_file() and (run / "junit.xml").is_file()
    missing = run_harness("report", "--reports", str(tmp_path / "out"), "--run", "nope")
    assert missing.returncode == 2 and "no run folder" in missing.stderr


def test_unwritable_reports_folder_is_one_message(tmp_path: Path) -> None:
    blocker = tmp_path / "reports"
    blocker.write_text("a file where the reports folder should be\n")
    done = run_harness("build", "--matrix", "matrices/smoke.yaml", "--cells", "debian-11.1/prebuilt",
                       "--reports", str(blocker), "--cache", str(tmp_path / "c"))  # fmt: skip
    # The reports folder is checked before anything else (no engine needed to see this error).
    assert done.returncode == 3, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and done.stderr.startswith("error: ")
    assert str(blocker) in done.stderr and "--reports" in done.stderr


def test_store_list_and_an_unknown_tree_to_add(tmp_path: Path) -> None:
    empty = run_harness("store", "list", "--cache", str(tmp_path / "cache"))
    assert empty.returncode == 0 and "0 folder(s)" in empty.stdout
    bad = run_harness(
        "store", "add", "--matrix", "matrices/store.yaml", "--trees", "nope", "--cache", str(tmp_path)
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "no fetchable tree nope" in bad.stderr and "debian-7.2" in bad.stderr


# --- run folders, plans and output (issue 16) --------------------------------------------------------


@pytest.mark.parametrize("name", ["..", "../elsewhere", "/etc", "a/b", ""])
def test_report_run_must_name_a_folder_under_reports(tmp_path: Path, name: str) -> None:
    (tmp_path / "reports").mkdir()
    done = run_harness("report", "--reports", str(tmp_path / "reports"), "--run", name)
    assert done.returncode == 2 and done.stderr.startswith("error: --run ") and "Traceback" not in done.stderr
    assert "not a run folder name" in done.stderr and not list(Path("/etc").glob("index.html"))


def test_report_of_an_empty_run_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "reports" / "empty").mkdir(parents=True)
    done = run_harness("report", "--reports", str(tmp_path / "reports"), "--run", "empty")
    assert done.returncode == 2 and "holds no run" in done.stderr and "Traceback" not in done.stderr


def test_the_plan_is_written_before_anything_can_fail(tmp_path: Path) -> None:
    """No engine answers: the run stops before any cell, yet its folder says what it set out to do,
    and its report shows every planned cell as not run (exit 1)."""
    cells = ["debian-11.1/prebuilt/boot/tcg", "debian-11.1/prebuilt/normal/tcg"]
    done = run_harness("test", "--matrix", "matrices/smoke.yaml", "--cells", *cells,
                       "--cache", str(tmp_path / "c"), "--reports", str(tmp_path / "r"), "--run-id", "x",
                       env={"DOCKER_HOST": f"unix://{tmp_path}/nope.sock"})  # fmt: skip
    assert done.returncode == 3, done.stdout + done.stderr
    plan = json.loads((tmp_path / "r" / "x" / "plan.json").read_text())
    assert plan["scenarios"] == cells and plan["builds"] == ["debian-11.1/prebuilt"]
    again = run_harness("report", "--reports", str(tmp_path / "r"), "--run", "x")
    assert again.returncode == 1
    summary = json.loads((tmp_path / "r" / "x" / "summary.json").read_text())
    assert summary == {cell: "not-run" for cell in cells}


def test_a_closed_stdout_is_quiet_and_the_work_still_done(tmp_path: Path) -> None:
    """`report | head`: the reader leaves; the command neither complains nor stops writing files."""
    shutil.copytree(
        Path(__file__).resolve().parent / "data" / "runs" / "20261126T020000Z", tmp_path / "r" / "x"
    )
    argv = [sys.executable, "-m", "harness", "report", "--reports", str(tmp_path / "r"), "--run", "x"]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1, err  # the run holds failed cells: the same code as with a reader
    assert err == ""
    assert (tmp_path / "r" / "x" / "index.html").is_file() and (tmp_path / "r" / "x" / "junit.xml").is_file()


def test_argument_errors_are_one_message() -> None:
    done = run_harness("test", "--jobs", "0")
    assert done.returncode == 2 and done.stderr.startswith("error: python -m harness test: argument --jobs")
    assert "usage:" not in done.stderr


@pytest.mark.docker
def test_a_reused_run_id_never_mixes_runs_and_the_exit_code_covers_the_report(tmp_path: Path) -> None:
    """An earlier run left a failed cell in reports/nightly. A passing `build --run-id nightly` goes to
    nightly-2 (the earlier run kept as it was), so its report and its exit code agree: all passed."""
    reports, cache = tmp_path / "r", tmp_path / "c"
    earlier = json.loads((Path(__file__).resolve().parent / "data" / "runs" / "20261126T020000Z" / "results" /
                          "upstream-10.2__lean__cpr-exec__tcg" / "result.json").read_text())  # fmt: skip
    earlier["verdict"] = "fail"
    (reports / "nightly" / "results" / "upstream-10.2__lean__cpr-exec__tcg").mkdir(parents=True)
    (reports / "nightly" / "results" / "upstream-10.2__lean__cpr-exec__tcg" / "result.json").write_text(
        json.dumps(earlier)
    )
    done = run_harness("build", "--matrix", "matrices/smoke.yaml", "--cells", "debian-11.1/prebuilt",
                       "--cache", str(cache), "--reports", str(reports), "--run-id", "nightly")  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "is kept as it is, and this run is nightly-2" in done.stdout
    assert (reports / "latest").resolve() == reports / "nightly-2"
    assert json.loads((reports / "nightly-2" / "results.json").read_text())["totals"]["fail"] == 0
    assert (reports / "nightly" / "results" / "upstream-10.2__lean__cpr-exec__tcg" / "result.json").is_file()


def test_machine_profile_mistakes_name_the_matrix_key(tmp_path: Path) -> None:
    """A wrong kernel or initramfs path, or an unknown device: one message naming file, line and key."""
    matrix = Path(__file__).resolve().parent.parent / "matrices" / "devices.yaml"
    text = matrix.read_text()
    assert "    devices: [display, virtio-blk-raw]\n" in text
    bad = tmp_path / "devices.yaml"
    bad.write_text(
        text.replace(
            "    devices: [display, virtio-blk-raw]\n", "    devices: [display, virtio-scsi]\n"
        ).replace(
            "    firmware: ovmf\n", "    firmware: ovmf\n    kernel: no/bzImage\n    initrd: no/initrd.img\n"
        )
    )
    done = run_harness("list", "--matrix", str(bad))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "machines.display.devices[1]: unknown device 'virtio-scsi'" in done.stderr
    assert "machines.ovmf.kernel: file not found:" in done.stderr and "no/bzImage" in done.stderr
    assert "machines.ovmf.initrd: file not found:" in done.stderr
    assert "devices.yaml:" in done.stderr
    unknown = run_harness("detect", "--machines", "minimal,huge", "--clean-runs", "0")
    assert unknown.returncode == 2 and "--machines: unknown huge" in unknown.stderr
    assert "virtio" in unknown.stderr  # the fix lists the known profiles
