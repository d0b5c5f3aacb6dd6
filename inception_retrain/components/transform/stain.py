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


def _matmul_channels(image: tf.Tensor, matrix: np.ndarray) -> tf.Tensor:
    """[..., 3] @ matrix.T: each pixel's channel vector through a 3x3 colour matrix (matmul:
    matvec broadcasts the matrix per pixel, 14x slower measured)."""
    return tf.linalg.matmul(image, tf.constant(matrix.T, image.dtype))


def _pow(base: tf.Tensor, exponent: float) -> tf.Tensor:
    """base ** exponent for base > 0 as exp(exponent * log(base)): 2.5x faster than tf.pow on
    CPU (measured), equal to float32 rounding."""
    return tf.exp(exponent * tf.math.log(base))


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


def rgb_to_lab(image: tf.Tensor) -> tf.Tensor:
    """RGB in [0, 255] -> CIE L*a*b* (D65), as skimage.color.rgb2lab."""
    rgb = image / 255.0
    linear = tf.where(rgb > 0.04045, _pow((tf.maximum(rgb, 0.04045) + 0.055) / 1.055, 2.4),
                      rgb / 12.92)
    xyz = _matmul_channels(linear, XYZ_FROM_RGB) / tf.constant(D65_WHITE, image.dtype)
    f = tf.where(xyz > _EPSILON, _pow(tf.maximum(xyz, _EPSILON), 1.0 / 3.0),
                 _KAPPA * xyz + 16.0 / 116.0)
    fx, fy, fz = tf.unstack(f, axis=-1)
    return tf.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def lab_to_rgb(lab: tf.Tensor) -> tf.Tensor:
    """CIE L*a*b* (D65) -> RGB in [0, 255], as skimage.color.lab2rgb (out of gamut clipped)."""
    lightness, a, b = tf.unstack(lab, axis=-1)
    fy = (lightness + 16.0) / 116.0
    f = tf.stack([a / 500.0 + fy, fy, tf.maximum(fy - b / 200.0, 0.0)], axis=-1)
    cube = f * f * f
    xyz = tf.where(cube > _EPSILON, cube, (f - 16.0 / 116.0) / _KAPPA)
    linear = _matmul_channels(xyz * tf.constant(D65_WHITE, lab.dtype), RGB_FROM_XYZ)
    rgb = tf.where(linear > 0.0031308,
                   1.055 * _pow(tf.maximum(linear, 0.0031308), 1.0 / 2.4) - 0.055,
                   linear * 12.92)
    return tf.clip_by_value(rgb, 0.0, 1.0) * 255.0


def tissue_moments(lab: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """[batch, h, w, 3] LAB -> per image (tissue pixel count [batch], sum [batch, 3], sum of
    squares [batch, 3]) over the pixels darker than TISSUE_MAX_LIGHTNESS."""
    mask = tf.cast(lab[..., :1] < TISSUE_MAX_LIGHTNESS, lab.dtype)
    return (tf.reduce_sum(mask, axis=[1, 2, 3]), tf.reduce_sum(lab * mask, axis=[1, 2]),
            tf.reduce_sum(tf.square(lab) * mask, axis=[1, 2]))


def _mean_and_std(count, total, squares):
    mean = total / count
    return mean, tf.sqrt(tf.maximum(squares / count - tf.square(mean), 0.0))


def reinhard(images: tf.Tensor, target_mean: tf.Tensor, target_std: tf.Tensor) -> tf.Tensor:
    """[batch, h, w, 3] RGB in [0, 255] -> the same with each image's LAB tissue mean and std
    per channel mapped to target_mean, target_std ([3] each). An image without tissue pixels
    (all glass) is left as it is."""
    lab = rgb_to_lab(images)
    count, total, squares = tissue_moments(lab)
    mean, std = _mean_and_std(tf.maximum(count, 1.0)[:, None], total, squares)
    scale = target_std / tf.maximum(std, 1e-3)
    normalised = lab_to_rgb((lab - mean[:, None, None]) * scale[:, None, None]
                            + target_mean)
    return tf.where((count > 0)[:, None, None, None], normalised, images)


def target_from_sums(count: tf.Tensor, total: tf.Tensor, squares: tf.Tensor):
    """(mean [3], std [3]) of LAB over every tissue pixel, from the sums tissue_moments gives
    summed over a whole split (the Transform's analyzers)."""
    return _mean_and_std(tf.maximum(count, 1.0), total, squares)
