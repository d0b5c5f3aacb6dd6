"""Ingest throughput: the real ImageExampleGen (driver + Beam executor, TFRecords written) with 1
and 2 workers, beside a plain Pillow loop (read, decode, convert to RGB, encode JPEG) with the
same number of processes, on the same files.

    python bench/ingest_benchmark.py [--data-root ../shared/datasets/flowers] [--workers 1 2]
                                     [--repeat 2]

The headline is end-to-end: images/s over wall-clock time that includes everything a run pays,
Beam pipeline construction and runner start, each multi-processing worker importing TensorFlow,
writing the gzipped TFRecords. Beside it, labelled "marginal", the steady-state rate: the same
run on a small copy of the data set (--small-per-class files of each class) is timed too, and
marginal = (N - n) / (time(N) - time(n)), which cancels the costs every run pays once whatever
its size; the small run's time is printed as the fixed cost. The plain loop is measured the same
way, interleaved with the pipeline so both see the same machine load, best of --repeat runs.
With multi-processing workers both pipeline times carry the workers' imports (tens of seconds
when Python has no cached bytecode), so their difference is noisy: raise --repeat to trust it.
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
from typing import Callable, Dict, List, Tuple

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
    from components.image_example_gen.component import ImageExampleGen
    from components.image_example_gen.standalone import run_example_gen

    beam_args = ([] if workers == 1 else
                 ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"])
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        run_example_gen(ImageExampleGen(root), os.path.join(out, "examples"), beam_args)
        return time.perf_counter() - start


def files_by_class(root: str) -> List[str]:
    """Every file of every class folder under root, sorted: what the pipeline ingests."""
    from components.image_example_gen import ingest

    classes = ingest.validate_layout(root).classes
    return sorted(str(p) for c in classes for p in Path(root, c).iterdir())


def small_copy(paths: List[str], root: str, per_class: int, dest: str) -> List[str]:
    """Copies the first per_class files of each class to dest/<class>/ (copies, not links:
    the ingest refuses symlinks that lead outside its data root); returns the copies."""
    copied: Dict[str, List[str]] = {}
    for path in paths:
        target = os.path.join(dest, os.path.relpath(path, root))
        in_class = copied.setdefault(os.path.dirname(target), [])
        if len(in_class) < per_class:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(path, target)
            in_class.append(target)
    return [target for in_class in copied.values() for target in in_class]


def timed_rounds(repeat: int, runs: List[Callable[[], float]]) -> List[List[float]]:
    """Each run's seconds over `repeat` rounds; the runs alternate within a round."""
    times: List[List[float]] = [[] for _ in runs]
    for _ in range(repeat):
        for seconds, run in zip(times, runs):
            seconds.append(run())
    return times


def marginal_rate(extra_files: int, full: List[float], small: List[float]) -> Tuple[float, bool]:
    """(extra files / (best full time - best small time), whether that difference exceeds the
    run-to-run spread of the two timings: if not, it is noise rather than a rate)."""
    difference = min(full) - min(small)
    spread = max(full) - min(full) + max(small) - min(small)
    return extra_files / difference, difference > spread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=str(DEFAULT_ROOT))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs each")
    parser.add_argument("--small-per-class", type=int, default=2,
                        help="files per class in the small run that the marginal rate subtracts")
    args = parser.parse_args()
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

    root = args.data_root
    if not os.path.isdir(root):
        raise SystemExit(f"no dataset at {root}; pass --data-root")
    paths = files_by_class(root)
    with tempfile.TemporaryDirectory() as small_root:
        small = small_copy(paths, root, args.small_per_class, small_root)
        n, n_small = len(paths), len(small)
        print(f"{n} files under {root}; the small run for the marginal rate: {n_small} files")
        print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
        pipeline_ingest(small_root, 1)  # warm-up: imports TensorFlow, TFX and Beam once
        print(f"{'':>7} | {'end-to-end img/s (headline)':^26} | {'marginal img/s':^26} | "
              f"{'fixed':>7} |")
        print(f"{'workers':>7} | {'pipeline':>8} {'plain':>8} {'ratio':>8} | "
              f"{'pipeline':>8} {'plain':>8} {'ratio':>8} | {'s':>7} | load")
        for workers in args.workers:
            pipeline, pipeline_small, plain, plain_small = timed_rounds(args.repeat, [
                functools.partial(pipeline_ingest, root, workers),
                functools.partial(pipeline_ingest, small_root, workers),
                functools.partial(plain_loop, paths, workers),
                functools.partial(plain_loop, small, workers)])
            marginal, resolved = marginal_rate(n - n_small, pipeline, pipeline_small)
            plain_marginal, plain_resolved = marginal_rate(n - n_small, plain, plain_small)
            flag, plain_flag = ("" if ok else "?" for ok in (resolved, plain_resolved))
            both = "" if resolved and plain_resolved else "?"
            print(f"{workers:>7} | {n / min(pipeline):>8.1f} {n / min(plain):>8.1f} "
                  f"{min(plain) / min(pipeline):>8.2f} | {marginal:>7.1f}{flag:1} "
                  f"{plain_marginal:>7.1f}{plain_flag:1} {marginal / plain_marginal:>7.2f}{both:1} "
                  f"| {min(pipeline_small):>7.2f} | {os.getloadavg()[0]:.2f}", flush=True)
    print(f"Best of {args.repeat}. ratio: pipeline / plain loop with the same number of processes."
          f" marginal: (N - n) / (t(N) - t(n)), n = {n_small} files; ?: t(N) - t(n) is within "
          "the run-to-run spread of those times, noise rather than a rate (raise --repeat). "
          f"fixed: the pipeline's time for the {n_small} files (construction, runner and "
          "worker start).")


if __name__ == "__main__":
    main()
