"""Sanitizer reports found in real stderr: tiny C programs built with -fsanitize=address / undefined by
the host's compiler, run with the driver's environment (harness.live.sanitizers.ENV), then scanned."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from observations import good

from harness.live import sanitizers
from harness.live.checks import evaluate

PROGRAMS = {
    "use-after-free": "#include <stdlib.h>\nint main(void){int *p=malloc(8);free(p);return p[1];}\n",
    "overflow": "int main(int c, char **v){int a[2]; (void)v; return a[c + 1];}\n",
    "shift": "int main(int c, char **v){(void)v; return (c + 31) << (c + 31) ? 0 : 1;}\n",
    "leak": "#include <stdlib.h>\nint main(void){void *volatile p=malloc(64);p=0;return 0;}\n",
    "clean": "int main(void){return 0;}\n",
}


def _run(tmp_path: Path, name: str, sanitizer: str) -> str:
    """The stderr of program ``name`` built with ``-fsanitize=<sanitizer>`` (skip: no such compiler)."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    src, exe = tmp_path / f"{name}.c", tmp_path / name
    src.write_text(PROGRAMS[name])
    built = subprocess.run(
        [cc, "-O0", "-g", f"-fsanitize={sanitizer}", "-o", str(exe), str(src)], capture_output=True, text=True
    )
    if built.returncode != 0:
        pytest.skip(f"{cc} cannot build with -fsanitize={sanitizer}: {built.stderr.strip()[:200]}")
    env = {k: v for k, v in os.environ.items() if not k.endswith("SAN_OPTIONS")} | sanitizers.ENV
    return subprocess.run([str(exe)], capture_output=True, text=True, env=env, timeout=60).stderr


def test_asan_use_after_free_is_found_with_its_frame(tmp_path: Path) -> None:
    reports = sanitizers.scan(_run(tmp_path, "use-after-free", "address"))
    assert len(reports) == 1
    r = reports[0]
    assert r.sanitizer == "AddressSanitizer" and r.what.startswith("heap-use-after-free on address")
    assert "main" in r.where and "use-after-free.c:2" in r.where
    assert "freed by thread T0 here" in r.excerpt or "READ of size 4" in r.excerpt


def test_asan_stack_overflow(tmp_path: Path) -> None:
    (r,) = sanitizers.scan(_run(tmp_path, "overflow", "address"))
    assert r.what.startswith("stack-buffer-overflow") and "overflow.c:1" in r.where


def test_ubsan_runtime_error_names_the_source_line(tmp_path: Path) -> None:
    (r,) = sanitizers.scan(_run(tmp_path, "shift", "undefined"))
    assert r.sanitizer == "UndefinedBehaviorSanitizer" and "shift exponent 32" in r.what
    assert r.where.startswith(str(tmp_path / "shift.c") + ":1:") or "shift.c:1:" in r.where


def test_leaks_are_not_reports_under_the_drivers_environment(tmp_path: Path) -> None:
    assert sanitizers.scan(_run(tmp_path, "leak", "address")) == []
    assert sanitizers.scan(_run(tmp_path, "clean", "address")) == []


def test_a_report_in_a_qemus_stderr_fails_the_check(tmp_path: Path) -> None:
    stderr = _run(tmp_path, "use-after-free", "address")
    obs = good("cpr-exec")
    obs.qemu_stderr = {"stderr-source.log": "qemu-system-x86_64: warning: dummy\n", "stderr-dst.log": ""}
    check = {c.name: c for c in evaluate(obs)}["sanitizers"]
    assert check.verdict == "pass" and check.observed == "none in 2 stderr log(s)"
    obs.qemu_stderr["stderr-destination.log"] = "qemu starts\n" + stderr
    check = {c.name: c for c in evaluate(obs)}["sanitizers"]
    assert check.verdict == "fail"
    assert check.observed.startswith("stderr-destination.log: AddressSanitizer: heap-use-after-free")
    assert "--- stderr-destination.log" in check.detail


def test_a_report_cut_at_its_head_still_counts_by_its_summary() -> None:
    obs = good("normal")
    obs.qemu_stderr = {
        "stderr-source.log": "...\nSUMMARY: AddressSanitizer: heap-use-after-free x.c:3 in f\n"
    }
    check = {c.name: c for c in evaluate(obs)}["sanitizers"]
    assert check.verdict == "fail" and "heap-use-after-free x.c:3 in f" in check.observed
