"""The names a training configuration may use, importable without TensorFlow.

``rps.config`` checks settings against these and ``python -m rps --help`` lists them, so both
stay instant; ``rps.architectures`` and ``rps.augmentation`` hold what each name builds
(``tests/test_config.py`` checks that the registries and these names agree).
"""

ARCHITECTURE_NAMES = ("baseline", "improved", "regularised", "compact", "hand")
RECIPES = ("none", "study", "robust", "hand")
# ``robust-no-<part>`` switches one part of the robust recipe off: the rows of "What each augmentation buys" in docs/whole-photo-model.md.
# Each part names the flag of ``rps.augmentation.robust_layers`` it turns off.
ROBUST_PARTS = {"background": "replace_background", "rotation": "wide_rotation",
                "colour": "colour", "blur": "blur_and_noise", "erasing": "erase_patches",
                "clean": "keep_clean", "fingers": "fill_finger_gaps"}
ABLATIONS = tuple(f"robust-no-{part}" for part in ROBUST_PARTS)
AUGMENTATIONS = RECIPES + ABLATIONS  # every name make_augmenter, TrainConfig and the CLI accept
SCHEDULES = ("constant", "cosine")
INPUT_MODES = ("hand", "image")
