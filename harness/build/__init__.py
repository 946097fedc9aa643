"""Building one tree with one profile: sources of every kind (tarball, git, Debian source, local),
downloads, patch queues, the build box and the builder, then triage of a failure and its remedy.

May import: ``harness.engine``, ``harness.config``, ``harness.store``, ``harness.errors``, ``harness.live``.
"""
