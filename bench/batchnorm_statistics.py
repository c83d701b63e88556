"""Is a model's BatchNormalization the reason it fails?  Test accuracy two ways.

Inference mode uses the moving averages that BatchNormalization keeps during training; batch
mode normalises each (shuffled) test batch by its own statistics, as training does (dropout is
then active too).  A model that is right in batch mode and at chance in inference mode has
moving averages that do not yet describe its activations.  ``bench/study.py`` explains its
regularised row with this.

    python bench/batchnorm_statistics.py bench/results/study/regularised
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import STUDY_DATA, require

from rps.artifacts import load_bundle
from rps.datasets import open_dataset
from rps.pipeline import make_dataset


def accuracy(model, batches, batch_statistics: bool) -> float:
    right = total = 0
    for images, labels in batches:
        predicted = np.argmax(model(images, training=batch_statistics).numpy(), axis=1)
        right += int((predicted == labels.numpy()).sum())
        total += len(predicted)
    return right / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a run folder")
    args = parser.parse_args()
    bundle = load_bundle(args.model)
    test = open_dataset(require(STUDY_DATA)).test
    # Shuffled: the test files are sorted by class, and a one-class batch has skewed statistics.
    batches = make_dataset(test, bundle.image_size, 32, shuffle=True, seed=1)
    print(f"{args.model}: test accuracy {accuracy(bundle.model, batches, False):.1%} in inference "
          f"mode, {accuracy(bundle.model, batches, True):.1%} with batch statistics")


if __name__ == "__main__":
    main()
