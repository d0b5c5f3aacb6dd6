"""Stain variation of H&E tiles in TensorFlow ops, on float RGB images in [0, 255].

HED colour jitter (training augmentation): Ruifrok-Johnston colour deconvolution with
scikit-image's stain matrix, each image's haematoxylin, eosin and DAB densities scaled and shifted
at random, then recomposed. Reinhard normalisation: each image's CIE LAB mean and spread over its
tissue pixels mapped to a target's, so tiles of other labs and scanners look alike; being TF ops,
it runs inside the Transform graph and so inside the served model.
"""
from typing import Tuple

import numpy as np
import tensorflow as tf

# skimage.color's rgb_from_hed (Ruifrok & Johnston 2001): rows are the optical densities of
# haematoxylin, eosin and DAB in R, G, B.
RGB_FROM_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
HED_FROM_RGB = np.linalg.inv(RGB_FROM_HED)
# sRGB (D65) to CIE XYZ and the D65 reference white, as skimage.color uses them.
XYZ_FROM_RGB = np.array([[0.412453, 0.357580, 0.180423],
                         [0.212671, 0.715160, 0.072169],
                         [0.019334, 0.119193, 0.950227]])
RGB_FROM_XYZ = np.linalg.inv(XYZ_FROM_RGB)
D65_WHITE = np.array([0.95047, 1.0, 1.08883])
# Pixels at least this light (L* of 0..100) are glass or background, not tissue.
TISSUE_MAX_LIGHTNESS = 90.0
_EPSILON = 0.008856  # CIE (6/29)**3
_KAPPA = 7.787       # CIE (29/6)**2 / 3
_F_KNEE = 6.0 / 29.0      # CIE f where the cube meets its linear toe (f**3 == _EPSILON)
_SRGB_KNEE = 0.04045      # sRGB value (0..1) where the gamma curve meets its linear toe
_LINEAR_KNEE = 0.0031308  # the same point in linear light
# CIE: L* = 116 fy - 16, a* = 500 (fx - fy), b* = 200 (fy - fz): lab = f @ _LAB_FROM_F + offset.
_LAB_FROM_F = np.array([[0.0, 500.0, 0.0], [116.0, -500.0, 200.0], [0.0, 0.0, -200.0]])
_F_FROM_LAB = np.linalg.inv(_LAB_FROM_F)
_LAB_OFFSET_LIFT = np.array([16.0, 0.0, 0.0])  # f @ _LAB_FROM_F - this = LAB


def _matmul_channels(image: tf.Tensor, matrix: np.ndarray) -> tf.Tensor:
    """[..., 3] @ matrix: each pixel's channel (row) vector times a 3x3 matrix (matmul: matvec
    broadcasts the matrix per pixel, 14x slower measured)."""
    return tf.linalg.matmul(image, tf.constant(matrix, image.dtype))


def rgb_to_hed(image: tf.Tensor) -> tf.Tensor:
    """RGB in [0, 255] -> stain densities: OD = -log((I + 1) / 256), HED = OD @ inv(M)."""
    density = -tf.math.log((image + 1.0) / 256.0)
    return tf.linalg.matmul(density, tf.constant(HED_FROM_RGB, image.dtype))


def hed_to_rgb(hed: tf.Tensor) -> tf.Tensor:
    """Stain densities -> RGB in [0, 255] (hed_to_rgb(rgb_to_hed(x)) == x), clipped."""
    density = tf.linalg.matmul(hed, tf.constant(RGB_FROM_HED, hed.dtype))
    return tf.clip_by_value(256.0 * tf.exp(-density) - 1.0, 0.0, 255.0)


def hed_scale_shift(images: tf.Tensor, alpha: tf.Tensor, beta: tf.Tensor) -> tf.Tensor:
    """[batch, h, w, 3] RGB in [0, 255]: each stain's density * alpha + beta ([batch, 1, 1, 3])."""
    return hed_to_rgb(rgb_to_hed(images) * alpha + beta)


def jitter_shape(images: tf.Tensor) -> tf.Tensor:
    """The shape of alpha and beta: one per image and stain."""
    return tf.stack([tf.shape(images)[0], 1, 1, 3])


def hed_jitter(images: tf.Tensor, strength: float, seed: Tuple[int, int]) -> tf.Tensor:
    """HED colour jitter with alpha ~ U(1 - strength, 1 + strength), beta ~ U(-strength,
    strength) per image and stain, drawn from a stateless seed; 0 = unchanged."""
    if not strength:
        return images
    shape = jitter_shape(images)
    alpha = tf.random.stateless_uniform(shape, seed, 1.0 - strength, 1.0 + strength,
                                        dtype=images.dtype)
    beta = tf.random.stateless_uniform(shape, tf.stack(seed) + 1, -strength, strength,
                                       dtype=images.dtype)
    return hed_scale_shift(images, alpha, beta)


def _piecewise(x: tf.Tensor, knee: float, curve, toe_slope: float) -> tf.Tensor:
    """curve(x) above knee, its linear toe toe_slope * x (+ a constant) below, without a select:
    curve(max(x, knee)) + toe_slope * (min(x, knee) - knee). The two pieces meet at the knee
    (to float32 rounding in the CIE and sRGB curves), so this is the piecewise function; each
    tf.where costs about six elementwise passes on this CPU (measured)."""
    return curve(tf.maximum(x, knee)) + toe_slope * (tf.minimum(x, knee) - knee)


def _lab_lifted(image: tf.Tensor) -> tf.Tensor:
    """RGB in [0, 255] -> (L* + 16, a*, b*): CIE LAB less its one constant offset, which would
    cost a broadcast add over every pixel (about two elementwise passes here, measured)."""
    linear = _piecewise(image, 255.0 * _SRGB_KNEE, lambda c: tf.exp(
        2.4 * tf.math.log(c + 255.0 * 0.055) - 2.4 * np.log(255.0 * 1.055)), 1 / (255.0 * 12.92))
    xyz = _matmul_channels(linear, (XYZ_FROM_RGB / D65_WHITE[:, None]).T)
    f = _piecewise(xyz, _EPSILON, lambda t: tf.exp(tf.math.log(t) / 3.0), _KAPPA)
    return _matmul_channels(f, _LAB_FROM_F)


def rgb_to_lab(image: tf.Tensor) -> tf.Tensor:
    """RGB in [0, 255] -> CIE L*a*b* (D65), as skimage.color.rgb2lab."""
    return _lab_lifted(image) - tf.constant(_LAB_OFFSET_LIFT, image.dtype)


def lab_to_rgb(lab: tf.Tensor) -> tf.Tensor:
    """CIE L*a*b* (D65) -> RGB in [0, 255], as skimage.color.lab2rgb (out of gamut clipped)."""
    return _rgb_from_f(_matmul_channels(lab + tf.constant(_LAB_OFFSET_LIFT, lab.dtype),
                                        _F_FROM_LAB))


def _rgb_from_f(f: tf.Tensor) -> tf.Tensor:
    """CIE f (cube roots of X/Xn, Y/Yn, Z/Zn) -> RGB in [0, 255]. Each f is clamped at 0
    (skimage clamps Z's only; X's and Y's below 0 are far outside the RGB gamut, clipped)."""
    xyz = _piecewise(tf.nn.relu(f), _F_KNEE, lambda v: v * v * v, 1 / _KAPPA)
    linear = _matmul_channels(xyz, (RGB_FROM_XYZ * D65_WHITE[None, :]).T)
    rgb = _piecewise(linear, _LINEAR_KNEE, lambda v: (255.0 * 1.055) * tf.exp(
        tf.math.log(v) / 2.4) - 255.0 * 0.055, 255.0 * 12.92)
    return tf.clip_by_value(rgb, 0.0, 255.0)


def _lifted_moments(lifted: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """tissue_moments of _lab_lifted values, the sums as batched matmuls of the tissue mask
    (a masked multiply and reduce costs several passes more)."""
    batch = tf.shape(lifted)[0]
    mask = tf.cast(tf.reshape(lifted[..., 0], [batch, 1, -1])
                   < TISSUE_MAX_LIGHTNESS + _LAB_OFFSET_LIFT[0], lifted.dtype)
    flat = tf.reshape(lifted, [batch, -1, 3])
    return (tf.reduce_sum(mask, axis=[1, 2]), tf.linalg.matmul(mask, flat)[:, 0],
            tf.linalg.matmul(mask, tf.square(flat))[:, 0])


def tissue_moments(image: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """[batch, h, w, 3] RGB in [0, 255] -> per image (tissue pixel count [batch], sum [batch, 3],
    sum of squares [batch, 3]) of (L* + 16, a*, b*) over the pixels with L* below
    TISSUE_MAX_LIGHTNESS (the lift by 16 keeps target_from_sums' variances as they are)."""
    return _lifted_moments(_lab_lifted(image))


def _mean_and_std(count, total, squares):
    mean = total / count
    return mean, tf.sqrt(tf.maximum(squares / count - tf.square(mean), 0.0))


def reinhard(images: tf.Tensor, target_mean: tf.Tensor, target_std: tf.Tensor) -> tf.Tensor:
    """[batch, h, w, 3] RGB in [0, 255] -> the same with each image's LAB tissue mean and std
    per channel mapped to target_mean, target_std ([3] each). An image without tissue pixels
    (all glass) is left as it is.

    (lab - mean) * scale + target back to CIE f is one 3x3 matrix and shift per image, applied
    as a batched matmul; the selection of glass-only images runs only in a batch that has one."""
    lifted = _lab_lifted(images)
    count, total, squares = _lifted_moments(lifted)
    mean, std = _mean_and_std(tf.maximum(count, 1.0)[:, None], total, squares)
    scale = target_std / tf.maximum(std, 1e-3)
    f_from_lifted = tf.constant(_F_FROM_LAB, images.dtype)
    lift = tf.constant(_LAB_OFFSET_LIFT, images.dtype)
    shift = tf.linalg.matmul(target_mean + lift - mean * scale, f_from_lifted)
    batch = tf.shape(images)[0]
    f = (tf.linalg.matmul(tf.reshape(lifted, [batch, -1, 3]),
                          scale[:, :, None] * f_from_lifted) + shift[:, None, :])
    normalised = _rgb_from_f(tf.reshape(f, tf.shape(images)))
    has_tissue = count > 0
    return tf.cond(tf.reduce_all(has_tissue), lambda: normalised,
                   lambda: tf.where(has_tissue[:, None, None, None], normalised, images))


def target_from_sums(count: tf.Tensor, total: tf.Tensor, squares: tf.Tensor):
    """(mean [3], std [3]) of LAB over every tissue pixel, from the sums tissue_moments gives
    summed over a whole split (the Transform's analyzers)."""
    mean, std = _mean_and_std(tf.maximum(count, 1.0), total, squares)
    return mean - tf.constant(_LAB_OFFSET_LIFT, mean.dtype), std
