"""Running scenarios on the host side: one container per cell with the in-container driver
(``harness.live``), its result and logs collected as untrusted data; the detection campaign.

May import: ``harness.build`` (artifacts), ``harness.engine``, ``harness.config``, ``harness.store``,
``harness.errors``, ``harness.live``.
"""
