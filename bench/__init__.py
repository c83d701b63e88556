"""Benchmarks behind the figures quoted in README.md, RELIABILITY.md, docs/ and the model card.

Each is a module run from the repository root, e.g. ``python -m bench.real_rooms``: that puts the
root on the import path, so the scripts import ``rps``, ``app`` and each other (``bench.common``)
without editing the import path.  They call only the public API of ``rps`` and ``app``.  Their small
JSON summaries are committed in ``bench/results/``.  One-off studies that back no quoted figure
live in ``experiments/``.
"""
