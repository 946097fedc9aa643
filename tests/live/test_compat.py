"""What a QEMU supports, learnt from the binary itself (harness/live/compat.py)."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import REPO, image_tag

from harness.live.compat import Capabilities

NO_MODE = "Parameter 'mode' is unexpected"


def test_a_qemu_without_migmode_lacks_every_cpr_mode_in_its_own_words() -> None:
    errors = dict.fromkeys(("cpr-reboot", "cpr-transfer", "cpr-exec"), NO_MODE)
    caps = Capabilities(
        "/q", version="7.2.19", mode_errors=errors, machine_options={"acpi", "memory-backend"}
    )
    reason = caps.lacks("cpr-reboot")
    assert reason is not None and reason.startswith("7.2.19: Parameter")
    assert NO_MODE in reason and "no MigMode enum" in reason
    assert caps.lacks("normal") is None and caps.lacks("boot") is None
    assert caps.aux_ram_share is False


def test_a_mode_qemu_lists_is_never_called_lacking() -> None:
    caps = Capabilities("/q", mig_modes=["normal", "cpr-reboot"], mode_errors={"cpr-reboot": "odd refusal"})
    assert caps.lacks("cpr-reboot") is None  # the scenario runs and QEMU's own answer decides
    assert Capabilities("/q").aux_ram_share is True  # probe failed: options unknown, argv as for current QEMU


PROBE = "import json; from harness.live import compat; print(json.dumps(compat.probe('{}').to_json()))"


def probe_in(image: str, binary: str = "/usr/bin/qemu-system-x86_64") -> dict:
    argv = ["docker", "run", "--rm", "--network", "none", "-v", f"{REPO}/harness/live:/opt/h/harness/live:ro",
            "-e", "PYTHONPATH=/opt/h", image, "python3", "-c", PROBE.format(binary)]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.docker
@pytest.mark.qemu
def test_probe_of_debian_qemu_10_0() -> None:
    caps = probe_in(image_tag("qemu-trixie"))
    assert caps["version"].startswith("10.0.") and caps["notes"] == []
    assert caps["mig_modes"] == ["normal", "cpr-reboot", "cpr-transfer"]
    assert caps["mode_errors"] == {"cpr-exec": "Parameter 'mode' does not accept value 'cpr-exec'"}
    assert caps["aux_ram_share"] is True


@pytest.mark.docker
def test_probe_of_a_binary_that_is_not_there_is_a_note_not_an_error() -> None:
    caps = probe_in(image_tag("debian-trixie"), "/nonexistent/qemu")
    assert caps["version"] == "" and caps["mig_modes"] is None and caps["notes"]
