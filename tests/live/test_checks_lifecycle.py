"""Lifecycle checks: runstates and process hygiene."""

from __future__ import annotations

from observations import T0, events_src, good, one

# --- runstates ----------------------------------------------------------------------------------------


def test_runstates_pass_shows_sequences() -> None:
    c = one(good("normal"), "runstates")
    assert c.verdict == "pass"
    assert "running → finish-migrate → postmigrate" in c.observed
    assert "inmigrate → running" in c.observed


def test_runstates_cpr_reboot_source_may_pause_at_setup() -> None:
    obs = good("cpr-reboot")
    obs.source.runstates = ["running", "paused", "finish-migrate", "postmigrate"]
    assert one(obs, "runstates").verdict == "pass"


def test_runstates_destination_left_paused_fails() -> None:
    obs = good("cpr-transfer")
    obs.destination.runstates = ["inmigrate", "paused"]
    c = one(obs, "runstates")
    assert c.verdict == "fail"
    assert "destination: unexpected transition inmigrate → paused" in c.observed


def test_runstates_destination_must_end_running() -> None:
    obs = good("normal")
    obs.destination.runstates = ["inmigrate"]
    c = one(obs, "runstates")
    assert c.verdict == "fail"
    assert "destination: ends 'inmigrate', expected running" in c.observed


def test_runstates_source_resumed_names_the_transition() -> None:
    obs = good("normal")
    obs.source.runstates = ["running", "finish-migrate", "postmigrate", "running"]
    c = one(obs, "runstates")
    assert c.verdict == "fail"
    assert "source: unexpected transition postmigrate → running (#3" in c.observed


def test_runstates_source_not_postmigrate_fails() -> None:
    obs = good("cpr-transfer")
    obs.source.runstates = ["running", "finish-migrate"]
    c = one(obs, "runstates")
    assert c.verdict == "fail"
    assert "source: ends 'finish-migrate', expected postmigrate" in c.observed


def test_runstates_source_must_start_running() -> None:
    obs = good("normal")
    obs.source.runstates = ["prelaunch", "running", "postmigrate"]
    assert "starts 'prelaunch'" in one(obs, "runstates").observed


def test_runstates_cpr_exec_old_side_may_stop_anywhere_but_not_resume() -> None:
    obs = good("cpr-exec")
    for old in (["running"], ["running", "finish-migrate"], ["running", "finish-migrate", "postmigrate"]):
        obs.source.runstates = old
        assert one(obs, "runstates").verdict == "pass", old
    obs.source.runstates = ["running", "paused", "running"]  # exec failed: old QEMU resumed
    c = one(obs, "runstates")
    assert c.verdict == "fail"
    assert "paused → running" in c.observed


def test_runstates_empty_fails() -> None:
    obs = good("normal")
    obs.destination.runstates = []
    assert "destination: no runstate recorded" in one(obs, "runstates").observed


def test_runstates_boot() -> None:
    obs = good("boot")
    assert one(obs, "runstates").verdict == "pass"
    obs.source.runstates = ["running", "paused"]
    c = one(obs, "runstates")
    assert c.verdict == "fail"
    assert "running → paused" in c.observed
    obs.source.runstates = []
    assert one(obs, "runstates").verdict == "fail"


# --- process-hygiene ----------------------------------------------------------------------------------


def test_process_hygiene_pass() -> None:
    c = one(good("cpr-transfer"), "process-hygiene")
    assert c.verdict == "pass"
    assert c.observed == "source exit 0, destination exit alive; no leftovers"


def test_process_hygiene_old_qemu_still_alive_fails() -> None:
    obs = good("cpr-transfer")
    obs.source.exit_code = None
    c = one(obs, "process-hygiene")
    assert c.verdict == "fail"
    assert "source QEMU still alive after migration" in c.observed


def test_process_hygiene_cpr_exec_same_process_may_be_alive() -> None:
    obs = good("cpr-exec")
    assert obs.source.exit_code is None
    assert one(obs, "process-hygiene").verdict == "pass"


def test_process_hygiene_abort_is_named() -> None:
    obs = good("cpr-transfer")
    obs.source.exit_code = -6  # assertion failed: (channel) in migration/cpr.c
    c = one(obs, "process-hygiene")
    assert c.verdict == "fail"
    assert "source exited with -6, SIGABRT" in c.observed


def test_process_hygiene_resume_after_completed_fails() -> None:
    obs = good("cpr-transfer")
    obs.source.events = events_src(T0) + [{"event": "RESUME", "data": {}, "t": T0 + 0.5}]
    c = one(obs, "process-hygiene")
    assert c.verdict == "fail"
    assert "source emitted RESUME after MIGRATION completed" in c.observed


def test_process_hygiene_flag_resumed_after_migration_fails() -> None:
    obs = good("cpr-transfer")
    obs.source.resumed_after_migration = True
    assert "source ran again" in one(obs, "process-hygiene").observed


def test_process_hygiene_resume_before_migration_is_fine() -> None:
    obs = good("normal")
    obs.source.events = [{"event": "STOP", "t": T0 - 5}, {"event": "RESUME", "t": T0 - 4}] + events_src(T0)
    assert one(obs, "process-hygiene").verdict == "pass"


def test_process_hygiene_leftovers_and_zombies_fail() -> None:
    obs = good("normal")
    obs.leftover_processes = [
        "4242 qemu-system-x86 Z",
        "4243 qemu-system-x86 <defunct>",
        "4244 qemu-system-x86 S",
    ]
    c = one(obs, "process-hygiene")
    assert c.verdict == "fail"
    assert "leftover processes (2 defunct): 4242 qemu-system-x86 Z" in c.observed


def test_process_hygiene_boot() -> None:
    obs = good("boot")
    assert one(obs, "process-hygiene").verdict == "pass"
    obs.source.exit_code = 1
    assert "source exited with 1" in one(obs, "process-hygiene").observed
