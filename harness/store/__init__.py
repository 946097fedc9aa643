"""Records that cross stages and where they live: run folders, the build record, reading files that
something else wrote (containers, CI shards) without following them.

May import: the standard library, ``harness.live`` (the result model, the vocabulary, atomic writes).
"""
