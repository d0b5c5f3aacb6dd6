"""The trainer as the data grows: wall time per phase, cache-build rate against the bare
InceptionV3 forward rate at the same precision, and peak memory, at several data set sizes.

The images are generated tiles: random square crops (with random flips) of the shared flowers
photos, resized to --tile px and saved as JPEG, so N tiles are N distinct files of 5 classes
but come from only 1,215 photos (replicated content: accuracy here says nothing). Each size
trains in a fresh process; peak RSS is that process's own (trainer_benchmark.PEAK_RSS_MB).
The Transform graph is written once (from the smallest size's training split: the vocabulary
is the same 5 classes). The 100k row is extrapolated from the slope between the two largest
measured sizes. With --pipeline, each size also runs the whole local pipeline (ingest to push)
on the same tiles.

    python bench/scale_benchmark.py --sizes 1000,5000,20000 --image-size 128 [--pipeline]
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The same measurements as the trainer benchmark (bench/ is on sys.path as the script's folder).
from trainer_benchmark import (BARE_SCRIPT, DECODE_SCRIPT, PEAK_RSS_MB, PIPELINE_SCRIPT,
                               pipeline_overrides)

FLOWERS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "flowers"

TRAINER_SCRIPT = r"""
import json, sys, time
import tensorflow_transform as tft
from inception_retrain.components.trainer import train
from inception_retrain.components.trainer.config import TrainConfig
args = json.loads(sys.argv[1])
start = time.time()
result = train.train([args["train"]], [args["eval"]], tft.TFTransformOutput(args["transform"]),
                     TrainConfig(**args["config"]))
r = result.report
print(json.dumps({"total_seconds": time.time() - start,
                  "cache_seconds": r["phase1"]["cache_seconds"],
                  "cache": r.get("cache"), "precision": r["precision"]["precision"],
                  "phase1_seconds": r["phase1"]["seconds"],
                  "phase2_seconds": r["phase2"].get("seconds", 0.0),
                  "peak_rss_mb": PEAK_RSS_MB}))
""".replace("PEAK_RSS_MB", PEAK_RSS_MB)

def run(script: str, args: dict) -> dict:
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, "-c", script, json.dumps(args)], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(done.stderr[-4000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def make_tiles(source: Path, out: Path, count: int, tile: int, seed: int = 0) -> Path:
    """count tiles, as evenly over the classes as count allows, tile i of class c cut from
    photo i mod (photos of c)."""
    from PIL import Image, ImageOps

    rng = random.Random(seed)
    classes = sorted(p.name for p in source.iterdir() if p.is_dir())
    photos = {c: sorted(p for p in (source / c).iterdir() if p.suffix.lower() in
                        (".jpg", ".jpeg", ".png")) for c in classes}
    for i in range(count):
        name = classes[i % len(classes)]
        index = i // len(classes)
        target = out / name / f"{name}_{index:06d}.jpg"
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(photos[name][index % len(photos[name])]) as image:
            image = image.convert("RGB")
            side = int(min(image.size) * rng.uniform(0.5, 1.0))
            x = rng.randrange(image.size[0] - side + 1)
            y = rng.randrange(image.size[1] - side + 1)
            crop = image.crop((x, y, x + side, y + side)).resize((tile, tile))
            if rng.random() < 0.5:
                crop = ImageOps.mirror(crop)
            crop.save(target, quality=90)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=str(FLOWERS))
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--image-size", type=int, default=128, help="px fed to InceptionV3")
    parser.add_argument("--tile", type=int, default=0, help="tile JPEG px (0 = image size)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--phase1-epochs", type=int, default=3)
    parser.add_argument("--phase2-epochs", type=int, default=1)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--work", default="", help="work dir (tiles are kept and reused)")
    parser.add_argument("--pipeline", action="store_true",
                        help="also run the whole local pipeline (ingest to push) at each size")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    tile = args.tile or args.image_size
    work = Path(args.work or tempfile.mkdtemp(prefix="scale_bench_"))

    from inception_retrain.components.trainer import standalone

    print(f"[scale] tiles: {max(sizes)} generated {tile}x{tile} JPEG crops of the "
          f"{args.source} photos (replicated content), 80/20 train/eval; InceptionV3 at "
          f"{args.image_size} px, batch {args.batch_size}, {args.phase1_epochs} + "
          f"{args.phase2_epochs} epochs, random initialisation, precision {args.precision}; "
          f"work dir {work}", flush=True)
    start = time.time()
    tiles = make_tiles(Path(args.source), work / "tiles", max(sizes), tile)
    print(f"[scale] tiles ready in {time.time() - start:.0f} s", flush=True)
    classes = sorted(p.name for p in tiles.iterdir() if p.is_dir())
    rows, transform_dir = [], None
    for size in sizes:
        files = sorted(str(p) for c in classes
                       for p in sorted((tiles / c).iterdir())[:-(-size // len(classes))])
        files = files[:size]
        start = time.time()
        examples = standalone.write_examples(
            {"train": [f for i, f in enumerate(files) if i % 5],
             "eval": [f for i, f in enumerate(files) if i % 5 == 0]}, str(tiles),
            str(work / f"examples_{size}"))
        ingest_seconds = time.time() - start
        if transform_dir is None:
            shutil.rmtree(work / "transform", ignore_errors=True)  # a reused --work's older one
            transform_dir = standalone.write_transform_graph(
                examples["train"], args.image_size, str(work / "transform"))
        config = {"image_size": args.image_size, "batch_size": args.batch_size,
                  "phase1_epochs": args.phase1_epochs, "phase2_epochs": args.phase2_epochs,
                  "base_weights": "none", "early_stopping_patience": 1000,
                  "precision": args.precision, "seed": 42}
        print(f"[scale] {size} images: ingested in {ingest_seconds:.0f} s; training ...",
              flush=True)
        result = run(TRAINER_SCRIPT, {"train": examples["train"], "eval": examples["eval"],
                                      "transform": transform_dir, "config": config})
        decode = run(DECODE_SCRIPT, {"files": [examples["train"], examples["eval"]],
                                     "transform": transform_dir,
                                     "batch_size": args.batch_size, "limit": 2000})
        bare = run(BARE_SCRIPT, {"precision": args.precision, "image_size": args.image_size,
                                 "batch_size": args.batch_size, "seconds": 20})
        cache = result["cache"] or {}
        rows.append(dict(result, size=size, bare=bare["images_per_second"],
                         cache_rate=cache.get("steady_images_per_second", 0.0),
                         bytes_per_image=cache.get("bytes_per_image", 0),
                         decode=decode["images_per_second"]))
        if args.pipeline:
            # The pipeline at the trainer's settings, split 80/20 like the trainer's runs.
            rows[-1]["pipeline"] = run(PIPELINE_SCRIPT, {"overrides": pipeline_overrides(
                _linked_root(files, tiles, work / f"pipeline_{size}" / "data"),
                work / f"pipeline_{size}" / "work",
                {k: config[k] for k in ("image_size", "batch_size", "phase1_epochs",
                                        "phase2_epochs", "base_weights", "precision", "seed")})})
        print(f"[scale] {size}: {json.dumps(rows[-1])}", flush=True)
    report(rows)


def _linked_root(files, tiles: Path, root: Path) -> Path:
    """A data root holding these tiles only: hard links (regular files, which the pipeline's
    layout check accepts; it refuses symlinks that lead outside the root)."""
    for f in files:
        target = root / Path(f).relative_to(tiles)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(f, target)
    return root


def report(rows) -> None:
    print("\n" + "=" * 100)
    print("cache img/s: the steady rate (after each split's first batch), as the bare rate is "
          "measured after its warm-up; cache s: the whole build, tracing included")
    print("decode img/s: the input pipeline alone (read, parse, Transform graph: decode, resize)")
    print(f"{'images':>8}{'cache s':>9}{'cache img/s':>12}{'bare img/s':>11}{'ratio':>7}"
          f"{'phase1 s':>10}{'phase2 s':>10}{'total s':>9}{'peak RSS MB':>13}{'disk/img':>10}")
    for r in rows:
        print(f"{r['size']:>8}{r['cache_seconds']:>9.1f}{r['cache_rate']:>12.1f}{r['bare']:>11.1f}"
              f"{r['cache_rate'] / r['bare']:>7.2f}{r['phase1_seconds']:>10.1f}"
              f"{r['phase2_seconds']:>10.1f}{r['total_seconds']:>9.1f}{r['peak_rss_mb']:>13.0f}"
              f"{r['bytes_per_image'] / 1024:>8.1f}KB  decode {r['decode']:.0f} img/s")
    if len(rows) >= 2:
        a, b = rows[-2], rows[-1]
        n = 100_000
        slope = {k: (b[k] - a[k]) / (b["size"] - a["size"]) for k in
                 ("cache_seconds", "phase1_seconds", "phase2_seconds", "total_seconds",
                  "peak_rss_mb")}
        guess = {k: b[k] + slope[k] * (n - b["size"]) for k in slope}
        print(f"{'100000':>8}{guess['cache_seconds']:>9.0f}{'':>12}{'':>11}{'':>7}"
              f"{guess['phase1_seconds']:>10.0f}{guess['phase2_seconds']:>10.0f}"
              f"{guess['total_seconds']:>9.0f}{guess['peak_rss_mb']:>13.0f}"
              f"{b['bytes_per_image'] / 1024:>8.1f}KB  (extrapolated)")
        per_image = {k: slope[k] * 1000 for k in ("cache_seconds", "phase1_seconds",
                                                  "phase2_seconds")}
        top = max(per_image, key=per_image.get)
        print(f"per 1000 more images: cache {per_image['cache_seconds']:.1f} s, phase 1 "
              f"{per_image['phase1_seconds']:.1f} s, phase 2 {per_image['phase2_seconds']:.1f} s"
              f", peak RSS {slope['peak_rss_mb'] * 1000:+.1f} MB; "
              f"{top.replace('_seconds', '')} dominates; disk at 100k: "
              f"{b['bytes_per_image'] * n / 1e9:.1f} GB")
        first = rows[0]
        print(f"peak RSS at {b['size']} / at {first['size']}: "
              f"{b['peak_rss_mb'] / first['peak_rss_mb']:.2f} (bar: <= 1.3)")
    for r in rows:
        if "pipeline" in r:
            p = r["pipeline"]
            print(f"whole pipeline, {r['size']} images (ingest to push): "
                  f"{p['total_seconds']:.0f} s, peak RSS {p['peak_rss_mb']:.0f} MB, eval "
                  f"accuracy {p['eval_accuracy'] or 0:.3f}, pushed {p['pushed']}")
    print("=" * 100)


if __name__ == "__main__":
    main()
