"""The build key: stable for equal inputs, different when any input changes."""

from __future__ import annotations

from harness.build.buildbox import reproduce_script
from harness.build.builder import build_key
from harness.engine.containers import ImageRef
from harness.engine.sandbox import build_user

BASE = {
    "source_digest": "sha256:" + "a" * 64,
    "series_digest": "sha256:" + "b" * 64,
    "configure": ["--target-list=x86_64-softmmu", "--disable-docs"],
    "targets": ["qemu-system-x86_64"],
    "image_id": "sha256:" + "c" * 64,
}


def test_key_is_stable() -> None:
    key = build_key(**BASE)
    assert key == build_key(**dict(BASE))
    assert len(key) == 64 and int(key, 16) >= 0


def test_key_is_sensitive_to_each_input() -> None:
    changes = {
        "source_digest": "sha256:" + "d" * 64,
        "series_digest": "sha256:" + "e" * 64,
        "configure": ["--target-list=x86_64-softmmu", "--disable-docs", "--disable-werror"],
        "targets": [],
        "image_id": "sha256:" + "f" * 64,
    }
    keys = {build_key(**BASE)}
    for name, value in changes.items():
        keys.add(build_key(**{**BASE, name: value}))
    assert len(keys) == 1 + len(changes)
    reordered = {**BASE, "configure": list(reversed(BASE["configure"]))}
    assert build_key(**reordered) != build_key(**BASE), "configure order matters to configure"


def test_reproduce_script_quotes_flags() -> None:
    image = ImageRef("debian-trixie", "cpr-harness/debian-trixie:x", "sha256:" + "c" * 64)
    text = reproduce_script(
        "t/p",
        "k" * 64,
        image,
        __import__("pathlib").Path("/cache/src dir"),
        ["--extra-cflags=-O2 -g; rm -rf /"],
        ["qemu-system-x86_64"],
        2,
    )
    assert "'/cache/src dir':/src:ro" in text
    assert "rm -rf /'" in text  # the whole flag stays one quoted word inside sh -c
    assert "--network none" in text and f"--user {build_user().spec}" in text and "1000:1000" not in text
    assert "--cap-drop ALL" in text and "--security-opt no-new-privileges" in text
