"""Bisection: from a red cell to the commit that broke it, each step built and run in containers.

``python -m harness bisect --cell C --good G --bad B`` (and ``test --bisect auto``, which bisects a
night's regressions) drives ``git bisect`` over the commits of the cell's tree: each commit git asks
about is built as a normal cached build (its own key and record, starting from an earlier step's build
directory where :mod:`harness.build.incremental` finds that safe), then the cell runs on it N times.

- :mod:`~harness.bisect.target`: which tree of which cell is bisected, and the tree of one commit;
- :mod:`~harness.bisect.gitrepo`: refs, commits and ``git bisect`` itself, in a private clone;
- :mod:`~harness.bisect.steps`: one step (build, runs, the outcome git is told);
- :mod:`~harness.bisect.session`: the loop, its checks of the input and the ``bisect.json`` it keeps;
- :mod:`~harness.bisect.auto`: the night's regressions, bisected within a step budget.

The record is :class:`harness.store.bisect_record.BisectRecord`; its page is rendered by
:mod:`harness.report.bisect_page`.
"""
