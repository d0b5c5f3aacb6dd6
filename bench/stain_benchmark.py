"""Stain throughput on this CPU: Reinhard normalisation (transform/stain.py, as the Transform
graph runs it: RGB -> LAB, tissue statistics, LAB -> RGB) and HED colour jitter (as the
training augmentation runs it), on batches of H&E-like float tiles of 256 and 299 px a side.

    python bench/stain_benchmark.py [--batch 32] [--steps 10] [--repeat 3] [--sizes 256 299]
                                    [--model]

Rates are tiles per second of wall-clock time (each step a compiled tf.function over one batch,
its result fetched), best of --repeat, and beside them the process's CPU time per tile (every
thread's), which other work on the machine disturbs less: on a busy machine it shows what the
step costs when the wall-clock rate cannot. --model also times InceptionV3's forward pass (random
weights) on 299 px batches, the work each tile costs in training, to state the stain step's share.
"""
import argparse
import os
import time
from typing import Tuple

import numpy as np
import tensorflow as tf

from inception_retrain.components.transform import stain


def cpu_name() -> str:
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def he_tiles(batch: int, side: int) -> tf.Tensor:
    """Tissue (pink and purple, noisy) on half of each tile, glass on the rest."""
    rng = np.random.default_rng(0)
    tiles = np.full([batch, side, side, 3], 240.0, np.float32)
    tint = np.array([170.0, 90.0, 160.0]) + rng.uniform(-30, 30, [batch, 1, 1, 3])
    noise = rng.normal(0, 15, [batch, side // 2, side, 3])
    tiles[:, : side // 2] = np.clip(tint + noise, 0, 255)
    return tf.constant(tiles)


def rate(step, tiles: tf.Tensor, steps: int, repeat: int) -> Tuple[float, float]:
    """(best tiles/s, least CPU ms per tile) of `steps` calls of step(tiles), after one warm-up
    call."""
    step(tiles).numpy()
    best, cpu = 0.0, float("inf")
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            out = step(tiles)
        out.numpy()
        count = steps * int(tiles.shape[0])
        best = max(best, count / (time.perf_counter() - start))
        cpu = min(cpu, 1e3 * (time.process_time() - start_cpu) / count)
    return best, cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=32)  # the Trainer's batch_size
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 299])
    parser.add_argument("--strength", type=float, default=0.05)
    parser.add_argument("--model", action="store_true")
    args = parser.parse_args()

    target_mean = tf.constant([8.4, -0.15, 0.07])  # l-alpha-beta of H&E tissue
    target_std = tf.constant([0.6, 0.1, 0.04])
    normalise = tf.function(lambda x: stain.reinhard(x, target_mean, target_std))
    counter = tf.Variable(0, dtype=tf.int64)

    @tf.function
    def jitter(x):
        counter.assign_add(1)
        return stain.hed_jitter(x, args.strength, tf.stack([counter, counter + 7]))

    print(f"CPU: {cpu_name()}; {os.cpu_count()} logical cores; load average "
          f"{os.getloadavg()[0]:.2f} at the start; TensorFlow {tf.__version__}")
    print(f"batch {args.batch}, best of {args.repeat} x {args.steps} steps")
    results = {}
    for side in args.sizes:
        tiles = he_tiles(args.batch, side)
        for name, step in (("reinhard", normalise), ("hed_jitter", jitter)):
            results[name, side], cpu = rate(step, tiles, args.steps, args.repeat)
            print(f"{name:<11} {side} px: {results[name, side]:8.0f} tiles/s, "
                  f"{cpu:.3f} CPU ms per tile")
    if args.model:
        import tf_keras

        net = tf_keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg",
                                                input_shape=(299, 299, 3))
        forward = tf.function(lambda x: net(x / 127.5 - 1.0, training=False))
        model_rate, _ = rate(forward, he_tiles(args.batch, 299), max(args.steps // 5, 1), 1)
        print(f"InceptionV3 forward 299 px: {model_rate:8.1f} tiles/s")
        for name in ("reinhard", "hed_jitter"):
            if (name, 299) in results:
                print(f"{name} at 299 px costs {100 * model_rate / results[name, 299]:.2f} % of "
                      f"the forward pass's time per tile")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
