"""Stain variation of H&E tiles in TensorFlow ops, on float RGB images in [0, 255].

HED colour jitter (training augmentation): Ruifrok-Johnston colour deconvolution with
scikit-image's stain matrix, each image's haematoxylin, eosin and DAB densities scaled and shifted
at random, then recomposed. Reinhard normalisation (Reinhard et al. 2001) in the paper's own
colour space, Ruderman's l-alpha-beta (the logarithm of cone responses, decorrelated), as
HistomicsTK implements it: each image's tissue mean and spread per channel mapped to a target's,
so tiles of other labs and scanners look alike; being TF ops, it runs inside the Transform graph
and so inside the served model.
"""
from typing import Tuple

import numpy as np
import tensorflow as tf

# skimage.color's rgb_from_hed (Ruifrok & Johnston 2001): rows are the optical densities of
# haematoxylin, eosin and DAB in R, G, B.
RGB_FROM_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
HED_FROM_RGB = np.linalg.inv(RGB_FROM_HED)
# Reinhard et al. 2001 (HistomicsTK's rgb_to_lab): LMS cone responses from RGB, their natural
# logarithm, then Ruderman's decorrelating rotation to l (lightness), alpha and beta.
LMS_FROM_RGB = np.array([[0.3811, 0.5783, 0.0402], [0.1967, 0.7244, 0.0782],
                         [0.0241, 0.1288, 0.8444]])
LAB_FROM_LOG_LMS = np.diag([3 ** -0.5, 6 ** -0.5, 2 ** -0.5]) @ np.array(
    [[1.0, 1.0, 1.0], [1.0, 1.0, -2.0], [1.0, -1.0, 0.0]])
# LMS is clamped at one grey level before the logarithm, so black stays finite and near its
# neighbours (HistomicsTK replaces an exact 0 by machine epsilon, 36 log units away).
LMS_FLOOR = 1.0
# Pixels at least as light as this grey are glass or background, not tissue (a grey of 226 is
# CIE L* 90). A grey g has LMS of about g, so its l is sqrt(3) log(g).
TISSUE_MAX_GREY = 226.0
# Each image's statistics are taken over whole rows, every row_step(height)-th (34 rows, 10,166 of
# a 299 px tile's 89,401 pixels): a spread from that many pixels has a standard error under 1 %,
# and the rows cost a ninth of a pass (a gather of whole rows; a strided slice, or every n-th
# pixel, costs more than a full pass here, measured).
MOMENT_ROWS = 32
# An image with tissue on less than this fraction of its sampled pixels is left as it is, like
# glass: a few dark specks on glass give no colour statistics (their spread is near 0, and the
# scale to the target's would blow them up).
MIN_TISSUE_FRACTION = 0.01
# A spread is taken as at least this (log units: the step of one grey level at 256), so a flat
# channel is not scaled without bound.
SPREAD_FLOOR = 1.0 / 256


def row_step(height) -> tf.Tensor:
    """Every how many rows the statistics are sampled: at least MOMENT_ROWS rows, all of a
    small image's."""
    return tf.maximum(height // MOMENT_ROWS, 1)


# The moments are taken about (L_ORIGIN, 0, 0), the l of a grey of 128, so float32 sums of
# squares keep their precision (l is about 9 and its spread about 0.5).
L_ORIGIN = float(np.sqrt(3.0) * np.log(128.0))


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


def _log_lms(images: tf.Tensor) -> tf.Tensor:
    """[batch, h, w, 3] RGB in [0, 255] -> [batch, h * w, 3] log LMS."""
    flat = tf.reshape(images, [tf.shape(images)[0], -1, 3])
    return tf.math.log(tf.maximum(_matmul_channels(flat, LMS_FROM_RGB.T), LMS_FLOOR))


def _moments(log_lms: tf.Tensor, height: tf.Tensor):
    """tissue_moments of _log_lms values of images `height` rows high, and the number of pixels
    sampled; the sums as matmuls of the tissue weights (a masked multiply and reduce costs
    passes more)."""
    batch = tf.shape(log_lms)[0]
    rows = tf.gather(tf.reshape(log_lms, [batch, height, -1]),
                     tf.range(0, height, row_step(height)), axis=1)
    sample = _matmul_channels(tf.reshape(rows, [batch, -1, 3]), LAB_FROM_LOG_LMS.T)
    centred = sample - tf.constant([L_ORIGIN, 0.0, 0.0], sample.dtype)
    limit = np.sqrt(3.0) * np.log(TISSUE_MAX_GREY) - L_ORIGIN
    weights = tf.cast(centred[:, None, :, 0] < limit, sample.dtype)  # [batch, 1, n]
    return (tf.reduce_sum(weights, axis=[1, 2]), tf.linalg.matmul(weights, centred)[:, 0],
            tf.linalg.matmul(weights, tf.square(centred))[:, 0],
            tf.cast(tf.shape(sample)[1], sample.dtype))


def tissue_moments(image: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """[batch, h, w, 3] RGB in [0, 255] -> per image (tissue pixel count [batch], sum [batch, 3],
    sum of squares [batch, 3]) of l-alpha-beta less (L_ORIGIN, 0, 0), over the pixels of every
    row_step-th row that are darker than TISSUE_MAX_GREY."""
    return _moments(_log_lms(image), tf.shape(image)[1])[:3]


def _mean_and_std(count, total, squares):
    mean = total / count
    return mean, tf.sqrt(tf.maximum(squares / count - tf.square(mean), 0.0))


def reinhard(images: tf.Tensor, target_mean: tf.Tensor, target_std: tf.Tensor) -> tf.Tensor:
    """[batch, h, w, 3] RGB in [0, 255] -> the same with each image's l-alpha-beta tissue mean
    and std per channel mapped to target_mean, target_std ([3] each). An image without tissue
    pixels on MIN_TISSUE_FRACTION of its sampled pixels (glass) is left as it is.

    In log LMS the mapping is one 3x3 matrix and shift per image; after the exponential the shift
    is a factor per LMS channel, folded into the matrix back to RGB. So each pixel costs a
    matmul, max, log, matmul, exp, matmul and clip (the CIE LAB version cost about 46 passes)."""
    log_lms = _log_lms(images)
    count, total, squares, sampled = _moments(log_lms, tf.shape(images)[1])
    mean, std = _mean_and_std(tf.maximum(count, 1.0)[:, None], total, squares)
    mean += tf.constant([L_ORIGIN, 0.0, 0.0], images.dtype)
    scale = target_std / tf.maximum(std, SPREAD_FLOOR)
    # row vectors: lab = x @ to_lab; x' = ((lab - mean) * scale + target) @ from_lab
    to_lab = tf.constant(LAB_FROM_LOG_LMS.T, images.dtype)
    from_lab = tf.constant(np.linalg.inv(LAB_FROM_LOG_LMS).T, images.dtype)
    matrix = tf.linalg.matmul(to_lab * scale[:, None, :], from_lab)       # [batch, 3, 3]
    shift = tf.linalg.matmul((target_mean - mean * scale)[:, None, :], from_lab)  # [batch, 1, 3]
    to_rgb = tf.transpose(tf.exp(shift), [0, 2, 1]) * tf.constant(
        np.linalg.inv(LMS_FROM_RGB).T, images.dtype)                      # diag(e^shift) @ M
    rgb = tf.linalg.matmul(tf.exp(tf.linalg.matmul(log_lms, matrix)), to_rgb)
    normalised = tf.reshape(tf.clip_by_value(rgb, 0.0, 255.0), tf.shape(images))
    has_tissue = count >= tf.maximum(MIN_TISSUE_FRACTION * sampled, 1.0)
    return tf.cond(tf.reduce_all(has_tissue), lambda: normalised,
                   lambda: tf.where(has_tissue[:, None, None, None], normalised, images))


def target_from_sums(count: tf.Tensor, total: tf.Tensor, squares: tf.Tensor):
    """(mean [3], std [3]) of l-alpha-beta over every sampled tissue pixel, from the sums
    tissue_moments gives summed over a whole split (the Transform's analyzers)."""
    mean, std = _mean_and_std(tf.maximum(count, 1.0), total, squares)
    return mean + tf.constant([L_ORIGIN, 0.0, 0.0], mean.dtype), std
