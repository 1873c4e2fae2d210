"""The benchmark behind ``qa bench``: the service as users meet it, on this machine.

Every figure is measured in one run, side by side, so that ratios hold even on a shared,
noisy machine: the floor (a bare PyTorch encode of one question), ``/api/ask`` over HTTP
against ``qa serve`` in a subprocess, 16 concurrent clients, cold start, index build, a
corpus of 100,000+ sentences made from the docstrings and comments of the Python
standard library and the installed packages, and a sustained run that watches the
server's memory. Questions are generated from the corpus's own words and never repeated,
so no cache can help.

- ``corpus``: questions and the scale corpus;
- ``server``: launching ``qa serve`` and index builds in subprocesses;
- ``load``: one client and many;
- ``floors``: what the service is compared with;
- ``report``: targets, table and results file;
- ``run``: the whole run.
"""

from .floors import measure_help
from .report import check_targets, table, write_results
from .run import run_bench

__all__ = ["check_targets", "measure_help", "run_bench", "table", "write_results"]
