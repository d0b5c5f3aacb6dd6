"""Whole-slide tiling throughput: slides.tile_slide (tissue mask, tiles read at the target level,
background skipped) beside a plain OpenSlide loop (read_region of every grid tile at level 0,
resized, background kept), each with 1 and 2 processes (one slide per task), on the same slides.

    PYTHONPATH=tests python bench/slide_tiling_benchmark.py [--slides DIR] [--count 8]
                                                           [--repeat 3] [--workers 1 2]
                                                           [--end-to-end]

Without --slides it writes --count synthetic 4096 x 3072 slides at 0.5 um/px (tissue on ~5 %,
tests/slide_writer.py). Rates are tissue tiles per second of wall-clock time (the plain loop's
tiles are the same grid; it reads them all, as a loop without a mask must), best of --repeat.
Several workers pay off only when each has slides enough to cover its share; process start-up
is left out (warmed pool). --end-to-end also times `inception-retrain run` from the slides
(in class folders) to a pushed model, with the tiny settings of tests/e2e/test_slides_pipeline.py.
"""
import argparse
import math
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Callable, List

from inception_retrain.components.image_example_gen import slides
from inception_retrain.components.image_example_gen.ingest import IngestOptions

OPTIONS = IngestOptions()


def tile_count(path: str) -> int:
    """The tissue tiles slides.tile_slide keeps (PNG encoding not included: both loops stop
    at RGB pixels)."""
    return sum(1 for _ in slides.tile_slide(path, path, OPTIONS))


def plain_loop(path: str) -> int:
    """Every grid tile read with read_region at level 0 and resized to the tile size."""
    import openslide
    from PIL import Image

    with openslide.OpenSlide(path) as slide:
        mpp = float(slide.properties["openslide.mpp-x"])
        side = round(OPTIONS.slide_tile_um / mpp)
        width, height = slide.dimensions
        n = 0
        for y in range(0, height - side + 1, side):
            for x in range(0, width - side + 1, side):
                tile = slide.read_region((x, y), 0, (side, side)).convert("RGB")
                if tile.size != (OPTIONS.slide_tile_px,) * 2:
                    tile = tile.resize((OPTIONS.slide_tile_px,) * 2, Image.Resampling.LANCZOS)
                n += 1
    return n


def measure(fn: Callable[[str], int], paths: List[str], workers: int, repeat: int):
    """(tiles, best seconds); with several workers the pool is started and warmed (imports
    done) before the clock starts, as a long-running runner's workers are."""
    best, tiles = math.inf, 0
    pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else None
    try:
        if pool:
            pool.map(fn, paths[:workers], chunksize=1)
        for _ in range(repeat):
            start = time.perf_counter()
            tiles = sum(pool.map(fn, paths, chunksize=1) if pool else map(fn, paths))
            best = min(best, time.perf_counter() - start)
    finally:
        if pool:
            pool.close()
            pool.join()
    return tiles, best


def cpu_name() -> str:
    with open("/proc/cpuinfo") as f:
        return next((line.split(":", 1)[1].strip() for line in f
                     if line.startswith("model name")), "unknown CPU")


def end_to_end(folder: Path, work: Path) -> None:
    """Seconds from the slides to a pushed model through the whole local pipeline."""
    from inception_retrain.cli import main as cli

    settings = ["data.min_examples_per_class=1", "data.train_percent=34",
                "data.eval_percent=33", "data.test_percent=33", "training.image_size=75",
                "training.phase1_epochs=1", "training.phase2_epochs=0",
                "evaluation.accuracy_floor=0.0", "evaluation.min_eval_examples_per_class=1",
                "evaluation.min_eval_groups_per_class=1"]
    start = time.perf_counter()
    code = cli.main(["run", "--data-root", str(folder), "--work-dir", str(work),
                     "--base-weights", "none", "--report-examples", "0"]
                    + [arg for setting in settings for arg in ("--set", setting)])
    seconds = time.perf_counter() - start
    pushed = sorted(work.glob("serving/*/*/saved_model.pb"))
    print(f"end to end: {seconds:.1f} s from slides to "
          f"{'a pushed model' if pushed else 'no pushed model'} (exit code {code})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slides", type=Path)
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--end-to-end", action="store_true")
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}, {multiprocessing.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.slides
        if folder is None:
            from slide_writer import class_slides

            folder = Path(tmp) / "slides"
            classes = ("a", "b", "c") if args.end_to_end else ("a", "b")
            class_slides(folder, classes=classes,
                         per_class=math.ceil(args.count / len(classes)))
        paths = sorted(str(p) for p in folder.rglob("*") if slides.has_slide_extension(p.name))
        tissue = sum(map(tile_count, paths))
        print(f"{len(paths)} slides, {tissue} tissue tiles")
        print("method        workers  tiles read  seconds  tissue tiles/s")
        for workers in args.workers:
            for name, fn in (("tile_slide", tile_count), ("plain loop", plain_loop)):
                read, seconds = measure(fn, paths, workers, args.repeat)
                print(f"{name:<13} {workers:>7}  {read:>10}  {seconds:>7.2f}  "
                      f"{tissue / seconds:>14.1f}")
        if args.end_to_end:
            end_to_end(folder, Path(tmp) / "work")


if __name__ == "__main__":
    main()
