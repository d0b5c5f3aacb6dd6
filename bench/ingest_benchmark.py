"""Ingest throughput: the real ImageExampleGen (driver + Beam executor, TFRecords written) with 1
and 2 workers, beside a plain Pillow loop (read, decode, convert to RGB, encode JPEG) with the
same number of processes, on the same files.

    python bench/ingest_benchmark.py [--data-root ../shared/datasets/flowers] [--workers 1 2]
                                     [--repeat 3] [--scale 4]

Two rates per row. "end-to-end": images/s over wall-clock time that includes everything a run
pays once whatever its size: Beam pipeline construction, runner start, each multi-processing
worker importing TensorFlow and TFX (seconds each), the final renames. "steady": the rate once
running, what a large data set sees: the data set and --scale copies of it (every file
--scale times under new names) are both ingested, and steady = (extra files) / (time
difference), which cancels the once-per-run costs; the difference between the two is printed
as the fixed cost. The plain loop is measured the same way, interleaved with the pipeline so
both see the same machine load, best of --repeat runs.
"""
import argparse
import functools
import io
import multiprocessing
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, List, Tuple

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "flowers"


def _decode_convert_encode(path: str) -> int:
    from PIL import Image

    with open(path, "rb") as f:
        data = f.read()
    with Image.open(io.BytesIO(data)) as img:
        rgb = img.convert("RGB")
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=95)
    return len(out.getvalue())


def plain_loop(paths: List[str], processes: int) -> float:
    """Seconds for the plain Pillow loop over paths with this many processes."""
    start = time.perf_counter()
    if processes == 1:
        for path in paths:
            _decode_convert_encode(path)
    else:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            list(pool.imap_unordered(_decode_convert_encode, paths, chunksize=16))
    return time.perf_counter() - start


def pipeline_ingest(root: str, workers: int) -> float:
    """Seconds for ImageExampleGen's driver and executor over root with this many workers."""
    from inception_retrain.components.image_example_gen.component import ImageExampleGen
    from inception_retrain.components.image_example_gen.standalone import run_example_gen

    beam_args = ([] if workers == 1 else
                 ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"])
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        run_example_gen(ImageExampleGen(root), os.path.join(out, "examples"), beam_args)
        return time.perf_counter() - start


def files_by_class(root: str) -> List[str]:
    """Every file of every class folder under root, sorted: what the pipeline ingests."""
    from inception_retrain.components.image_example_gen import layout

    classes = layout.validate_layout(root).classes
    return sorted(str(p) for c in classes for p in Path(root, c).iterdir())


def scaled_copy(paths: List[str], root: str, copies: int, dest: str) -> List[str]:
    """Copies every file `copies` times to dest/<class>/<i>_<name> (copies, not links: the
    ingest refuses symlinks that lead outside its data root); returns the copies."""
    made = []
    for path in paths:
        rel = os.path.relpath(path, root)
        os.makedirs(os.path.join(dest, os.path.dirname(rel)), exist_ok=True)
        for i in range(copies):
            target = os.path.join(dest, os.path.dirname(rel), f"{i}_{os.path.basename(rel)}")
            shutil.copyfile(path, target)
            made.append(target)
    return made


def timed_rounds(repeat: int, runs: List[Callable[[], float]]) -> List[List[float]]:
    """Each run's seconds over `repeat` rounds; the runs alternate within a round."""
    times: List[List[float]] = [[] for _ in runs]
    for _ in range(repeat):
        for seconds, run in zip(times, runs):
            seconds.append(run())
    return times


def steady_rate(extra_files: int, large: List[float], base: List[float]) -> Tuple[float, bool]:
    """(extra files / (best large-run time - best base-run time), whether that difference
    exceeds the run-to-run spread of the two timings: if not, it is noise rather than a rate)."""
    difference = min(large) - min(base)
    spread = max(large) - min(large) + max(base) - min(base)
    return extra_files / difference, difference > spread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=str(DEFAULT_ROOT))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs each")
    parser.add_argument("--scale", type=int, default=4,
                        help="copies of the data set in the large run of the steady rate")
    args = parser.parse_args()
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

    root = args.data_root
    if not os.path.isdir(root):
        raise SystemExit(f"no dataset at {root}; pass --data-root")
    if args.scale < 2:
        raise SystemExit("--scale must be at least 2")
    paths = files_by_class(root)
    with tempfile.TemporaryDirectory() as large_root:
        large = scaled_copy(paths, root, args.scale, large_root)
        n, n_large = len(paths), len(large)
        print(f"{n} files under {root}; the steady rate also ingests {args.scale} copies of "
              f"them ({n_large} files)")
        print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
        pipeline_ingest(root, 1)  # warm-up: imports TensorFlow, TFX and Beam once
        print(f"{'':>7} | {'end-to-end img/s (with start)':^26} | "
              f"{'steady img/s (throughput)':^26} | {'fixed':>7} |")
        print(f"{'workers':>7} | {'pipeline':>8} {'plain':>8} {'ratio':>8} | "
              f"{'pipeline':>8} {'plain':>8} {'ratio':>8} | {'s':>7} | load")
        for workers in args.workers:
            pipeline, pipeline_large, plain, plain_large = timed_rounds(args.repeat, [
                functools.partial(pipeline_ingest, root, workers),
                functools.partial(pipeline_ingest, large_root, workers),
                functools.partial(plain_loop, paths, workers),
                functools.partial(plain_loop, large, workers)])
            steady, resolved = steady_rate(n_large - n, pipeline_large, pipeline)
            plain_steady, plain_resolved = steady_rate(n_large - n, plain_large, plain)
            flag, plain_flag = ("" if ok else "?" for ok in (resolved, plain_resolved))
            both = "" if resolved and plain_resolved else "?"
            print(f"{workers:>7} | {n / min(pipeline):>8.1f} {n / min(plain):>8.1f} "
                  f"{min(plain) / min(pipeline):>8.2f} | {steady:>7.1f}{flag:1} "
                  f"{plain_steady:>7.1f}{plain_flag:1} {steady / plain_steady:>7.2f}{both:1} "
                  f"| {min(pipeline) - n / steady:>7.2f} | {os.getloadavg()[0]:.2f}",
                  flush=True)
    print(f"Best of {args.repeat}. ratio: pipeline / plain loop with the same number of processes."
          f" steady: ({n_large} - {n}) / (t({n_large} files) - t({n} files)); ?: that time "
          "difference is within the run-to-run spread, noise rather than a rate (raise "
          "--repeat). fixed: the pipeline's time for the data set beyond what the steady rate "
          "accounts for (construction, runner and worker start, renames).")


if __name__ == "__main__":
    main()
