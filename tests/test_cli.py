"""User errors end in one clear message and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import run_harness

from harness.engine.bootstrap import host_debian_mirror


def test_list_default_matrix() -> None:
    done = run_harness("list")
    assert done.returncode == 0, done.stderr
    assert "build    upstream-10.2/lean" in done.stdout
    assert "scenario upstream-10.2/lean/cpr-exec/tcg" in done.stdout


def test_bad_yaml_key_names_file_line_and_key(tmp_path: Path) -> None:
    matrix = Path(__file__).resolve().parent.parent / "matrices" / "smoke.yaml"
    bad = matrix.parent / "_test_bad.yaml"
    bad.write_text(
        matrix.read_text().replace(
            "    binary: /usr/bin/qemu-system-x86_64\n",
            "    binary: /usr/bin/qemu-system-x86_64\n    colour: red\n",
            1,
        )
    )
    try:
        done = run_harness("list", "--matrix", str(bad))
    finally:
        bad.unlink()
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
