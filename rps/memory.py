"""How much memory a training will take, and how much a server lets it take.

A server shares its memory between every visitor and one training.  A training whose settings
need more than the machine has (a large input size with a large batch) gets the whole process
killed a few seconds in, and every visitor with it.  So a server estimates a training's peak
before starting it and refuses one over its budget, with both figures in the message.

The estimate adds what grows with the settings and the data (``estimate_training_bytes``):

* the model's state: weights, gradients and Adam's two moments, 4 x 4 bytes per parameter, and
  the weights of the ensemble members already trained (``TrainConfig.members``);
* activations: every layer's output for one batch, float32, kept for the backward pass and
  matched by its gradient (x 2), plus as much again for the backend's workspace (x 3 in all);
* the decoded data held in memory: uint8 crops or photos at the input size (``rps.training``
  keeps hand crops and whole photos that fit ``DEFAULT_CACHE_BYTES`` in memory; streamed photos
  cost only a few batches);
* ``RUNTIME_BYTES`` for TensorFlow, Keras and the landmarker themselves.

``python -m bench.train_memory`` compares the estimate with measured peaks.
"""

from __future__ import annotations

import math
import os
import re
from typing import Mapping

from rps.config import TrainConfig
from rps.errors import ConfigError

# TensorFlow, Keras, mediapipe and the served model loaded in one process: about 0.7 GB of
# resident memory on the development machine before any training starts.
RUNTIME_BYTES = 700 * 2**20
# Without RPS_MAX_TRAIN_MEMORY, a training may use this share of the machine's memory: the
# rest is left to serving, the operating system and the file cache.
DEFAULT_BUDGET_SHARE = 0.6
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


# A container's limit (cgroup v2, then v1): on a Space it is smaller than the host's memory.
CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
# Below this a training cannot even load TensorFlow: a smaller budget is a typo.
MIN_BUDGET_BYTES = 256 * 2**20


def physical_memory_bytes() -> int:
    """The memory this process may use: the machine's (Linux and macOS), or its container's
    limit when that is smaller; 0 when the system does not say."""
    try:
        total = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        total = 0
    for limit_file in CGROUP_LIMITS:
        try:
            limit = int(open(limit_file).read().strip())
        except (OSError, ValueError):  # absent, or "max" (no limit)
            continue
        if 0 < limit < (total or limit + 1):
            total = limit
        break
    return total


def parse_size(text: str) -> int:
    """``"4G"``, ``"3500M"``, ``"2.5GB"`` or a number of bytes -> bytes; ``ConfigError`` if not."""
    match = _SIZE.match(text or "")
    if not match:
        raise ConfigError(
            f"RPS_MAX_TRAIN_MEMORY must be a size such as 4G or 3500M, got {text!r}."
        )
    size = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if size < MIN_BUDGET_BYTES:
        raise ConfigError(
            f"RPS_MAX_TRAIN_MEMORY is {text!r}, {size:,} bytes; a training needs at least 256M "
            "(sizes take a unit: 4G, 3500M)."
        )
    return size


def training_budget_bytes(environ: Mapping[str, str] = os.environ) -> int | None:
    """``RPS_MAX_TRAIN_MEMORY``, else ``DEFAULT_BUDGET_SHARE`` of the machine's memory; None
    when neither is known (no limit)."""
    if environ.get("RPS_MAX_TRAIN_MEMORY"):
        return parse_size(environ["RPS_MAX_TRAIN_MEMORY"])
    total = physical_memory_bytes()
    return int(total * DEFAULT_BUDGET_SHARE) if total else None


def _activation_values(model) -> int:
    """Float values one example leaves in every layer's outputs."""
    total = 0
    for layer in model.layers:
        outputs = layer.output if isinstance(layer.output, (list, tuple)) else [layer.output]
        for output in outputs:
            shape = getattr(output, "shape", None)
            if shape is not None:
                total += math.prod(int(dim) for dim in shape[1:] if dim is not None)
    return total


def estimate_training_bytes(config: TrainConfig, class_count: int, image_count: int) -> int:
    """Peak resident bytes of ``rps.training.train`` with ``config`` on ``image_count`` photos
    (training, validation and test together), by the method of this module's docstring."""
    from rps.architectures import build_model
    from rps.pipeline import fits_in_cache

    model = build_model(config.architecture, config.image_size, class_count)
    state = model.count_params() * 4 * (4 + config.members - 1)
    activations = _activation_values(model) * config.batch_size * 4 * 3
    per_image = config.image_size**2 * 3
    in_memory = config.input == "hand" or fits_in_cache(image_count, config.image_size)
    data = image_count * per_image if in_memory else 8 * config.batch_size * per_image
    del model
    return RUNTIME_BYTES + state + activations + data


def check_training_memory(config: TrainConfig, class_count: int, image_count: int,
                          environ: Mapping[str, str] = os.environ) -> int:
    """The estimate in bytes; raises ``ConfigError`` when it is over the budget."""
    budget = training_budget_bytes(environ)
    estimate = estimate_training_bytes(config, class_count, image_count)
    if budget is not None and estimate > budget:
        raise ConfigError(
            f"This training would need about {estimate / 2**30:.1f} GB of memory (estimated for "
            f"{config.architecture} at {config.image_size} px, batch {config.batch_size}, "
            f"{image_count} photos); this server allows {budget / 2**30:.1f} GB "
            "(RPS_MAX_TRAIN_MEMORY). Use a smaller input size or batch size."
        )
    return estimate
