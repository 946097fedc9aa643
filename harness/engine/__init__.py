"""The container engine: images (content-hash tags, debootstrap fallback), containers through the Docker
Engine API, locks, and provisioning the engine itself. Knows Docker, not QEMU.

May import: docker, requests, ``harness.config``, ``harness.store``, ``harness.errors``, ``harness.live``.
"""
