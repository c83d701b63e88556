"""rps.architectures: the study's three CNNs as specified, for any size and class count."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from rps.architectures import ARCHITECTURES, build_model, make_optimizer


def conv_layers(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def count(model, kind):
    return sum(isinstance(layer, kind) for layer in model.layers)


PIXEL_MODELS = sorted(name for name in ARCHITECTURES if name != "hand")


@pytest.mark.parametrize("name", PIXEL_MODELS)
@pytest.mark.parametrize("image_size, classes", [(64, 3), (48, 27)])
def test_every_pixel_architecture_takes_raw_pixels_and_outputs_probabilities(name, image_size, classes):
    model = build_model(name, image_size, classes)
    assert model.input_shape == (None, image_size, image_size, 3)
    assert isinstance(model.layers[1], keras.layers.Rescaling)
    output = model(np.random.default_rng(0).uniform(0, 255, (2, image_size, image_size, 3)))
    assert output.shape == (2, classes)
    assert np.allclose(np.sum(output, axis=1), 1.0, atol=1e-5)


def test_baseline_matches_the_study():
    model = build_model("baseline", 300, 3)
    convs = conv_layers(model)
    assert [c.filters for c in convs] == [16, 32, 64]
    assert all(c.padding == "same" and c.kernel_size == (3, 3) for c in convs)
    assert count(model, keras.layers.MaxPooling2D) == 3
    assert [l.units for l in model.layers if isinstance(l, keras.layers.Dense)] == [64, 3]
    assert isinstance(make_optimizer("baseline"), keras.optimizers.Adam)


def test_improved_matches_the_study():
    model = build_model("improved", 300, 3)
    assert [c.filters for c in conv_layers(model)] == [32, 64, 128]
    assert all(c.padding == "valid" for c in conv_layers(model))
    dropout = [l for l in model.layers if isinstance(l, keras.layers.Dropout)]
    assert [d.rate for d in dropout] == [0.5]
    optimizer = make_optimizer("improved")
    assert isinstance(optimizer, keras.optimizers.RMSprop)
    assert float(optimizer.learning_rate) == pytest.approx(1e-4)


def test_regularised_adds_batchnorm_and_l2():
    model = build_model("regularised", 300, 3)
    assert count(model, keras.layers.BatchNormalization) == 4  # 3 conv + dense
    dense = [l for l in model.layers if isinstance(l, keras.layers.Dense)][0]
    assert dense.units == 128
    assert dense.kernel_regularizer.get_config()["l2"] == pytest.approx(0.01)
    assert isinstance(make_optimizer("regularised"), keras.optimizers.RMSprop)


def test_compact_fits_the_five_megabyte_model_file():
    # Global pooling keeps the weight count independent of the input size.
    for image_size in (64, 96):
        assert build_model("compact", image_size, 3).count_params() * 4 < 4.5e6


def receptive_field(model) -> int:
    """Pixels of input that one unit of the last feature map sees (3x3 convs, 2x2 pools)."""
    field, step = 1, 1
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            field += (layer.kernel_size[0] - 1) * step
        elif isinstance(layer, keras.layers.MaxPooling2D):
            field += (layer.pool_size[0] - 1) * step
            step *= layer.strides[0]
    return field


def test_compact_features_see_the_whole_frame():
    # With four blocks a pooled feature saw 46 of 64 px, never a whole open hand.
    assert receptive_field(build_model("compact", 64, 3)) >= 64


def test_compact_pools_by_maximum_so_backdrop_area_does_not_add_up():
    # Average pooling weighed every backdrop pixel's features by how much backdrop a frame
    # shows; a plain wall colour then swayed the answer (bench/backdrops.py, README).
    model = build_model("compact", 64, 3)
    assert count(model, keras.layers.GlobalMaxPooling2D) == 1
    assert count(model, keras.layers.GlobalAveragePooling2D) == 0


@pytest.mark.parametrize("classes", [3, 27])
def test_the_hand_model_reads_keypoints_only_and_outputs_probabilities(classes):
    from rps.architectures import input_names

    model = build_model("hand", 64, classes)
    assert input_names(model) == ["keypoints"] and model.input_shape == (None, 21, 3)
    keypoints = np.random.default_rng(0).uniform(-0.35, 0.35, (2, 21, 3)).astype(np.float32)
    output = model(keypoints)
    assert output.shape == (2, classes)
    assert np.all(np.asarray(output) >= 0) and np.all(np.asarray(output) <= 1)


def bones_picture(wrist, tip):
    from rps.architectures import KeypointHeatmaps

    keypoints = np.zeros((1, 21, 3), np.float32)
    keypoints[0, :, :2] = wrist
    keypoints[0, 5:9, :2] = np.linspace(wrist, tip, 4)  # the index finger stretched out
    return KeypointHeatmaps(size=32)(keypoints).numpy()[0]


def test_bone_heat_maps_draw_each_finger_in_its_own_channel_where_it_lies():
    maps = bones_picture((0.0, 0.3), (0.0, -0.3))  # wrist low, index tip high, in crop units
    assert maps.shape == (32, 32, 6)
    index = maps[..., 1]
    column = index[:, 16]
    # The maps span -0.6..0.6 in 32 rows: the bone from y=-0.3 to 0.3 lights rows 8 to 23.
    assert column[9:23].min() > 0.5 and max(column[:4].max(), column[28:].max()) < 0.01
    assert index[:, 2].max() < 1e-3  # far from the bone: dark
    # The other fingers are points at the wrist (y=0.3, row 24): lit there, dark up the index.
    assert maps[24, 16, 2:5].min() > 0.5 and maps[:16, :, 2:5].max() < 1e-3


def test_bone_heat_maps_ignore_depth():
    # MediaPipe's one-frame depth made tilted open hands look like fists (docs/hands-first.md).
    from rps.architectures import KeypointHeatmaps

    keypoints = np.random.default_rng(3).uniform(-0.3, 0.3, (1, 21, 3)).astype(np.float32)
    flat = keypoints.copy()
    flat[..., 2] = 0
    np.testing.assert_allclose(KeypointHeatmaps()(keypoints).numpy(), KeypointHeatmaps()(flat).numpy())


def test_unknown_architecture_names_the_choices():
    with pytest.raises(ValueError, match="baseline"):
        build_model("resnet", 64, 3)


def test_only_the_shipped_architecture_averages_its_weights():
    assert make_optimizer("compact", total_steps=2528).use_ema
    assert make_optimizer("compact", total_steps=2528).ema_momentum == pytest.approx(0.99)
    for study_model in ("baseline", "improved", "regularised"):
        assert not make_optimizer(study_model).use_ema


def test_short_runs_average_over_a_short_window():
    from rps.architectures import averaging_momentum

    assert averaging_momentum(50) == pytest.approx(0.5)  # a window of ~2 of 50 steps
    assert averaging_momentum(10) == 0.0  # too short to average: keep the last weights
    assert averaging_momentum(100_000) == 0.99
    assert averaging_momentum(None) == 0.99
