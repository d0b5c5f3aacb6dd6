"""Ingest throughput: the real ImageExampleGen (driver + Beam executor, TFRecords written) with 1
and 2 workers, beside a plain Pillow loop (read, decode, convert to RGB, encode JPEG) with the
same number of processes, on the same files.

    python bench/ingest_benchmark.py [--data-root ../shared/datasets/flowers] [--repeat 2]

Prints images/s for each and the ratio pipeline / plain loop. Wall-clock times include
everything a run pays: Beam worker start-up (each multi-processing worker imports TensorFlow)
and writing the gzipped TFRecords. The machine's load average is printed beside the figures.
"""
import argparse
import io
import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import List

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=str(DEFAULT_ROOT))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs each")
    args = parser.parse_args()
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

    from components.image_example_gen import ingest

    root = args.data_root
    if not os.path.isdir(root):
        raise SystemExit(f"no dataset at {root}; pass --data-root")
    classes = ingest.validate_layout(root).classes
    paths = sorted(str(p) for c in classes for p in Path(root, c).iterdir())
    print(f"{len(paths)} files in {len(classes)} classes under {root}")
    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    pipeline_ingest(root, 1)  # warm-up: imports TensorFlow, TFX and Beam once
    print(f"{'workers':>7} {'pipeline img/s':>15} {'plain loop img/s':>17} {'ratio':>6}")
    for workers in args.workers:
        pipeline = min(pipeline_ingest(root, workers) for _ in range(args.repeat))
        plain = min(plain_loop(paths, workers) for _ in range(args.repeat))
        print(f"{workers:>7} {len(paths) / pipeline:>15.1f} {len(paths) / plain:>17.1f} "
              f"{plain / pipeline:>6.2f}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
