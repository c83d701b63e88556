"""Where the model looked: Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep
Networks via Gradient-based Localization", ICCV 2017) on the last convolution of any CNN of the
registry, computed with ``tf.GradientTape``.

The class score's gradients with respect to the last convolution's feature maps are averaged
over space into one weight per channel; the weighted sum of the maps, through a ReLU, is the
heat map.  An ensemble's heat map is the mean of its members'.  For models that read the hand's
keypoints, the maps lie on the rendered skeleton (``KeypointHeatmaps``), which covers the aligned
crop and a margin around it: the heat map is cut to the crop, so it overlays the hand the model
saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import keras
import numpy as np
import tensorflow as tf

from rps.architectures import KeypointHeatmaps
from rps.images import ImageInput
from rps.inference import prepared_inputs
from rps.prediction import Prediction, Predictor


def _members(model: keras.Model) -> list[keras.Model]:
    return [layer for layer in model.layers if isinstance(layer, keras.Model)] or [model]


def last_convolution(model: keras.Model) -> keras.layers.Layer:
    """The model's last ``Conv2D`` layer; ``ValueError`` for a model without one."""
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    if not convolutions:
        raise ValueError(f"{model.name} has no convolution layer to explain.")
    return convolutions[-1]


def _after_members(model: keras.Model, members: list[keras.Model]) -> keras.Model | None:
    """What ``model`` computes from its members' outputs: an ensemble's mean, or a fine-tuned
    model's head on its members' features (``rps.finetune``); None for a model that is its own
    one member."""
    if members == [model]:
        return None
    joining = next(layer for layer in model.layers if not isinstance(layer, (keras.Model, keras.layers.InputLayer)))
    return keras.Model(joining.input, model.output)


class GradCam:
    """Grad-CAM for one model (or ensemble): ``heat_map(inputs, class_index)`` -> float32
    (h, w) in 0..1 at the last convolution's resolution.

    The class score is the whole model's output, through whatever follows its members (an
    ensemble's mean, or a fine-tuned model's new head on the members' features), and its
    gradient is taken at each member's last convolution."""

    def __init__(self, model: keras.Model):
        self.model = model
        self._graphs = []
        members = _members(model)
        for member in members:
            convolution = last_convolution(member)
            inputs = member.inputs[0] if len(member.inputs) == 1 else member.inputs
            self._graphs.append(keras.Model(inputs, [convolution.output, member.output]))
        self._after_members = _after_members(model, members)
        renderers = [layer for member in members for layer in member.layers
                     if isinstance(layer, KeypointHeatmaps)]
        self.extent = float(renderers[0].extent) if renderers else 1.0  # the rendered area / the crop

    def heat_map(self, inputs, class_index: int) -> np.ndarray:
        with tf.GradientTape() as tape:
            features, outputs = zip(*(graph(inputs, training=False) for graph in self._graphs))
            if self._after_members is None:
                probabilities = outputs[0]
            else:
                probabilities = self._after_members(list(outputs) if len(outputs) > 1 else outputs[0], training=False)
            score = probabilities[:, class_index]
        maps = []
        for feature_maps, gradients in zip(features, tape.gradient(score, list(features))):
            weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
            cam = tf.nn.relu(tf.reduce_sum(weights * feature_maps, axis=-1))[0].numpy()
            maps.append(cam / cam.max() if cam.max() > 0 else cam)
        combined = np.mean(maps, axis=0)
        return (combined / combined.max() if combined.max() > 0 else combined).astype(np.float32)


@dataclass(frozen=True)
class Explanation:
    prediction: Prediction
    heat_map: np.ndarray | None  # float32 (size, size) in 0..1 over the crop; None when declined
    overlay: np.ndarray | None  # uint8 (size, size, 3): the crop the model saw with the heat map


def overlay(image: np.ndarray, heat_map: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """``image`` (H, W, 3) uint8 RGB with ``heat_map`` (any size, 0..1) blended on in the JET
    colour map (red: where the model looked most)."""
    resized = cv2.resize(heat_map.astype(np.float32), (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    colours = cv2.cvtColor(cv2.applyColorMap(np.uint8(255 * np.clip(resized, 0, 1)), cv2.COLORMAP_JET),
                           cv2.COLOR_BGR2RGB)
    return np.uint8(np.clip((1 - alpha) * image + alpha * colours, 0, 255))


class Explainer:
    """``explain(image)``: the ``Predictor``'s answer with its Grad-CAM over the crop it saw."""

    def __init__(self, predictor: Predictor):
        self.predictor = predictor
        self.grad_cam = GradCam(predictor.bundle.model)
        self.size = predictor.bundle.image_size

    def explain(self, image: ImageInput) -> Explanation:
        prepared = self.predictor.prepare(image)
        prediction = self.predictor.predict_prepared(prepared)
        if prediction.reason or prepared.pixels is None:
            return Explanation(prediction, None, None)
        class_index = self.predictor.class_names.index(prediction.label)
        model = self.predictor.bundle.model
        given = prepared_inputs(prepared)
        names = [tensor.name for tensor in model.inputs]
        inputs = {name: given[name] for name in names}
        heat = self.grad_cam.heat_map(inputs if len(names) > 1 else inputs[names[0]], class_index)
        heat = self._on_the_crop(heat)
        seen = prediction.crop if prediction.crop is not None else prepared.pixels
        return Explanation(prediction, heat, overlay(seen, heat))

    def _on_the_crop(self, heat: np.ndarray) -> np.ndarray:
        """The heat map resized to the crop; for a rendered skeleton, its central part that
        covers the crop (the rendering spans ``extent`` times the crop)."""
        if self.grad_cam.extent == 1.0:
            return cv2.resize(heat, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        larger = int(round(self.size * self.grad_cam.extent))
        resized = cv2.resize(heat, (larger, larger), interpolation=cv2.INTER_LINEAR)
        start = (larger - self.size) // 2
        return np.ascontiguousarray(resized[start:start + self.size, start:start + self.size])
