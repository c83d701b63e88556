"""One-off studies: measurements that back no figure in README.md, RELIABILITY.md, docs/hands-first.md
or the model card (see README.md here).  Run from the repository root as ``python -m experiments.NAME``;
they share ``bench.common``'s helpers and write their JSON to ``experiments/results/`` (not committed).
"""

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
