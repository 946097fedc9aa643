"""What a maintainer reads, from stored records only: the HTML dashboard and cell pages (jinja2,
autoescaped, no JavaScript), JUnit, results.json, history against an earlier run, trends over the last N
runs, merged CI shards, and the text a run prints.

May import: jinja2, ``harness.store``, ``harness.config``, ``harness.errors``, ``harness.live``.
"""
