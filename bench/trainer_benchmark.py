"""Side by side, on the same images and settings: (a) the plain Keras two-phase script a user
would write instead, (b) this project's trainer, (c) the whole local pipeline.

Prints wall time per phase, images/s, eval accuracy and the ratios. Each part runs in a fresh
process so none inherits another's warm caches or settings.

    python bench/trainer_benchmark.py --data ../shared/datasets/flowers
    python bench/trainer_benchmark.py --data ../shared/datasets/flowers --limit-per-class 40
"""
import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

EVAL_PERCENT = 20
# Each child script's own peak RSS in MB, put where it says PEAK_RSS_MB: VmHWM is this process's
# high-water mark; ru_maxrss would carry the forking benchmark's own peak across exec.
PEAK_RSS_MB = ('next(int(l.split()[1]) for l in open("/proc/self/status") '
               'if l.startswith("VmHWM:")) / 1024')

# (a) What a user writes by hand, following the Keras transfer-learning guide:
# image_dataset_from_directory, the frozen base recomputed every epoch, then Keras' top-two-
# block unfreeze (the first 249 layers stay frozen).
PLAIN_SCRIPT = r"""
import json, sys, time
import tensorflow as tf
args = json.loads(sys.argv[1])
keras = tf.keras
tf.keras.utils.set_random_seed(args["seed"])
size = (args["image_size"], args["image_size"])
train_ds = keras.utils.image_dataset_from_directory(args["train_dir"], image_size=size,
    batch_size=args["batch_size"], seed=args["seed"])
classes = len(train_ds.class_names)
train_ds = train_ds.prefetch(tf.data.AUTOTUNE)
eval_ds = keras.utils.image_dataset_from_directory(args["eval_dir"], image_size=size,
    batch_size=args["batch_size"], shuffle=False).prefetch(tf.data.AUTOTUNE)
base = keras.applications.InceptionV3(include_top=False, weights=None,
                                      input_shape=size + (3,))
base.trainable = False
inputs = keras.Input(size + (3,))
x = keras.applications.inception_v3.preprocess_input(inputs)
x = base(x, training=False)
x = keras.layers.GlobalAveragePooling2D()(x)
x = keras.layers.Dropout(0.2)(x)
model = keras.Model(inputs, keras.layers.Dense(classes)(x))
loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
model.compile(keras.optimizers.Adam(learning_rate=1e-3), loss, metrics=["accuracy"])
start = time.time()
model.fit(train_ds, validation_data=eval_ds, epochs=args["phase1_epochs"], verbose=2)
phase1 = time.time() - start
base.trainable = True
for layer in base.layers[:249]:
    layer.trainable = False
model.compile(keras.optimizers.Adam(learning_rate=1e-4), loss, metrics=["accuracy"])
start = time.time()
model.fit(train_ds, validation_data=eval_ds, epochs=args["phase2_epochs"], verbose=2)
phase2 = time.time() - start
print(json.dumps({"phase1_seconds": phase1, "phase2_seconds": phase2,
                  "eval_accuracy": model.evaluate(eval_ds, verbose=0)[1]}))
"""

# (b) This project's trainer, on the same train/eval images turned into its inputs.
TRAINER_SCRIPT = r"""
import json, sys, time
import numpy as np
import tensorflow_transform as tft
from inception_retrain.components.trainer import train
from inception_retrain.components.trainer.config import TrainConfig
args = json.loads(sys.argv[1])
output = tft.TFTransformOutput(args["transform_dir"])
config = TrainConfig(**args["config"])
start = time.time()
result = train.train([args["train"]], [args["eval"]], output, config)
total = time.time() - start
correct = seen = 0
for images, labels in train.transformed_dataset([args["eval"]], output, config.batch_size):
    predicted = np.argmax(result.classifier(images, training=False).numpy(), axis=-1)
    correct += int((predicted == labels.numpy()).sum()); seen += len(labels)
report = result.report
print(json.dumps({"cache_seconds": report["phase1"]["cache_seconds"],
                  "phase1_seconds": report["phase1"]["seconds"],
                  "phase2_seconds": report["phase2"].get("seconds", 0.0),
                  "phase2_epochs_run": report["phase2"].get("epochs_run", 0),
                  "total_seconds": total, "eval_accuracy": correct / seen,
                  "precision": report["precision"], "cache": report.get("cache"),
                  "phase1_val_accuracy": report["phase1"]["history"]["val_accuracy"][-1],
                  "peak_rss_mb": PEAK_RSS_MB}))
""".replace("PEAK_RSS_MB", PEAK_RSS_MB)

# The input pipeline alone: read, parse and the Transform graph (decode, resize, scale), as the
# trainer's cache build reads the images, without the network: it shares the CPU with the
# forward pass, so 1 / (1 / bare + 1 / decode) bounds the cache-build rate on a CPU.
DECODE_SCRIPT = r"""
import json, sys, time
import tensorflow_transform as tft
from inception_retrain.components.trainer import train
args = json.loads(sys.argv[1])
output = tft.TFTransformOutput(args["transform"])
data = train.transformed_dataset(args["files"], output, args["batch_size"])
for _ in data.take(1):
    pass
start, seen = time.time(), 0
for _, labels in data.skip(1):
    seen += len(labels)
    if seen >= args.get("limit", 10 ** 9):
        break
print(json.dumps({"images_per_second": seen / (time.time() - start)}))
"""

# The bare forward pass at a precision: InceptionV3 on random images in a tf.function with a
# batch dimension of None (as the trainer's), nothing else: the rate the cache build is held to.
BARE_SCRIPT = r"""
import json, sys, time
import numpy as np, tensorflow as tf, tf_keras
from inception_retrain.components.trainer import precision
args = json.loads(sys.argv[1])
choice = precision.choose(args["precision"], len(tf.config.list_physical_devices("GPU")),
                          precision.cpu_flags())
precision.apply(choice)
tf_keras.utils.set_random_seed(0)
s = args["image_size"]
model = tf_keras.applications.InceptionV3(include_top=False, weights=None,
                                          input_shape=(s, s, 3), pooling="avg")
forward = tf.function(lambda x: model(x, training=False),
                      input_signature=[tf.TensorSpec([None, s, s, 3], tf.float32)])
images = tf.random.uniform([args["batch_size"], s, s, 3], -1, 1)
forward(images).numpy(); forward(images).numpy()  # trace and warm up
start, seen = time.time(), 0
while time.time() - start < args["seconds"] or seen < 4 * args["batch_size"]:
    forward(images).numpy(); seen += args["batch_size"]
print(json.dumps({"images_per_second": seen / (time.time() - start),
                  "precision": choice["precision"]}))
"""

# (c) The whole local pipeline: ingest, statistics, validation, transform, training,
# evaluation and push.
PIPELINE_SCRIPT = r"""
import json, sys, time
from inception_retrain.pipeline import config as config_lib, local_runner
from inception_retrain.run_reading import reader
args = json.loads(sys.argv[1])
config = config_lib.load(overrides=args["overrides"])
start = time.time()
local_runner.run(config, local_runner.preflight(config))
seconds = time.time() - start
record = reader.read(config.metadata_path, config.pipeline_name)
print(json.dumps({"total_seconds": seconds,
                  "components": [c.to_dict() for c in record.components],
                  "eval_accuracy": (record.evaluation.metrics.get("sparse_categorical_accuracy")
                                    if record.evaluation else None),
                  "pushed": record.published_version,
                  "peak_rss_mb": PEAK_RSS_MB}))
""".replace("PEAK_RSS_MB", PEAK_RSS_MB)


def pipeline_overrides(data_root, work_dir, training: dict, **data) -> dict:
    """PIPELINE_SCRIPT's config: the benchmark's EVAL_PERCENT split, no test split, no accuracy
    floor (random initialisation), the given training settings and further data.* keys."""
    return {"work_dir": str(work_dir),
            "data": dict({"root": str(data_root), "train_percent": 100 - EVAL_PERCENT,
                          "eval_percent": EVAL_PERCENT, "test_percent": 0}, **data),
            "training": training, "evaluation": {"accuracy_floor": 0.0}}


def _run(script: str, args: dict, label: str) -> dict:
    print(f"[bench] running {label} ...", flush=True)
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    completed = subprocess.run([sys.executable, "-c", script, json.dumps(args)], env=env,
                               capture_output=True, text=True)
    if completed.returncode != 0:
        print(f"[bench] {label} FAILED:\n{completed.stderr[-4000:]}", flush=True)
        return {"failed": completed.stderr[-400:]}
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    print(f"[bench] {label}: {json.dumps(result)}", flush=True)  # kept if a later part fails
    return result


def _hash_split(data_root: str, limit_per_class: int):
    """The pipeline's own split (sha256 of the relative path feature, as TFX partitions), so
    all three contenders train and validate on exactly the same images."""
    import tensorflow as tf
    from tfx.components.example_gen.base_example_gen_executor import _PartitionFn
    from tfx.proto import example_gen_pb2

    from inception_retrain.components import features
    from inception_retrain.components.image_example_gen import ingest

    split_config = example_gen_pb2.SplitConfig(partition_feature_name=features.PATH_KEY)
    chosen = {"train": [], "eval": []}
    for class_dir in sorted(p for p in Path(data_root).iterdir() if p.is_dir()):
        files = sorted(p for p in class_dir.iterdir() if p.is_file()
                       and not ingest.is_hidden(f"{class_dir.name}/{p.name}"))
        for path in files[:limit_per_class or None]:
            rel = f"{class_dir.name}/{path.name}"
            key = tf.train.Example(features=tf.train.Features(feature={
                features.PATH_KEY: tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[rel.encode()]))}))
            split = _PartitionFn(key, 2, [100 - EVAL_PERCENT, 100], split_config)
            chosen[("train", "eval")[split]].append(str(path))
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="<root>/<class>/<images>")
    parser.add_argument("--limit-per-class", type=int, default=0,
                        help="use only the first N images of each class (0 = all)")
    parser.add_argument("--phase1-epochs", type=int, default=10)
    parser.add_argument("--phase2-epochs", type=int, default=2)
    parser.add_argument("--pipeline-epochs", default="3,2", help="phase1,phase2 for (c)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=299)
    parser.add_argument("--trainer-precisions", default="auto,float32",
                        help="training.precision of each (b) run, on the same seed")
    parser.add_argument("--bare-seconds", type=float, default=20.0,
                        help="how long each bare forward-rate measurement runs")
    parser.add_argument("--skip", default="", help="comma list of: plain,trainer,pipeline")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    from inception_retrain.components.trainer import standalone
    from inception_retrain.components.trainer.config import TrainConfig

    work = Path(tempfile.mkdtemp(prefix="trainer_bench_"))
    split = _hash_split(args.data, args.limit_per_class)
    # One folder per split for the plain script; one flat folder for the pipeline (copies:
    # the pipeline refuses symlinks that lead outside its data root).
    for name, files in split.items():
        for path in files:
            for target in (work / name / Path(path).parent.name / Path(path).name,
                           work / "all" / Path(path).parent.name / Path(path).name):
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target)
    counts = {k: len(v) for k, v in split.items()}
    print(f"[bench] {counts['train']} train and {counts['eval']} eval images from {args.data}; "
          f"batch {args.batch_size}, {args.image_size} px, random initialisation "
          f"(no ImageNet download here); phase 1 {args.phase1_epochs} and phase 2 "
          f"{args.phase2_epochs} epochs; work dir {work}", flush=True)
    shared = {"image_size": args.image_size, "batch_size": args.batch_size, "seed": 42,
              "phase1_epochs": args.phase1_epochs, "phase2_epochs": args.phase2_epochs}
    results = {}
    if "plain" not in skip:
        results["plain"] = _run(PLAIN_SCRIPT, dict(shared, train_dir=str(work / "train"),
                                                   eval_dir=str(work / "eval")), "plain Keras")
    if "trainer" not in skip:
        examples = standalone.write_examples(split, args.data, str(work / "examples"))
        transform_dir = standalone.write_transform_graph(examples["train"], args.image_size,
                                                         str(work / "transform"))
        for precision in args.trainer_precisions.split(","):
            config = TrainConfig(base_weights="none", early_stopping_patience=1000,
                                 precision=precision, **{k: v for k, v in shared.items()})
            run = _run(TRAINER_SCRIPT, {
                "train": examples["train"], "eval": examples["eval"],
                "transform_dir": transform_dir, "config": dataclasses.asdict(config)},
                f"trainer (precision {precision})")
            # The bare forward rate at the precision that ran, right after it, same load.
            run["bare"] = _run(BARE_SCRIPT, {"precision": precision,
                                             "image_size": args.image_size,
                                             "batch_size": args.batch_size,
                                             "seconds": args.bare_seconds},
                               f"bare InceptionV3 forward ({precision})")
            results[f"trainer:{precision}"] = run
        results["decode"] = _run(DECODE_SCRIPT, {
            "files": [examples["train"], examples["eval"]], "transform": transform_dir,
            "batch_size": args.batch_size}, "input pipeline alone (decode and transform)")
    if "pipeline" not in skip:
        phase1, phase2 = (int(e) for e in args.pipeline_epochs.split(","))
        results["pipeline"] = _run(PIPELINE_SCRIPT, {"overrides": pipeline_overrides(
            work / "all", work / "pipeline",
            {"base_weights": "none", "batch_size": args.batch_size,
             "image_size": args.image_size, "phase1_epochs": phase1, "phase2_epochs": phase2},
            # The flowers set holds one photo under both roses and tulips: recorded, not fatal.
            on_label_conflict="warn")}, "local pipeline")
    failed = {k: v["failed"] for k, v in results.items() if "failed" in v}
    _print_table({k: v for k, v in results.items() if "failed" not in v}, counts, args)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


def _print_table(results, counts, args) -> None:
    train_images = counts["train"]
    print("\n" + "=" * 78)
    print(f"{'':<28}{'phase 1 s':>12}{'phase 2 s':>12}{'total s':>10}{'eval acc':>10}")
    decode = results.get("decode", {}).get("images_per_second")
    for name, r in results.items():
        if name == "decode":
            continue
        if name == "pipeline":
            print(f"{'(c) local pipeline':<28}{'':>12}{'':>12}{r['total_seconds']:>10.1f}"
                  f"{(r['eval_accuracy'] or 0):>10.3f}")
            continue
        phase1 = r["phase1_seconds"] + r.get("cache_seconds", 0.0)
        total = r.get("total_seconds", r["phase1_seconds"] + r["phase2_seconds"])
        label = ("(a) plain Keras script" if name == "plain" else
                 f"(b) trainer, {r['precision']['precision']}")
        print(f"{label:<28}{phase1:>12.1f}{r['phase2_seconds']:>12.1f}{total:>10.1f}"
              f"{r['eval_accuracy']:>10.3f}")
        images_per_s = train_images * args.phase1_epochs / phase1
        print(f"{'':<28}phase 1: {images_per_s:.1f} images/s (train images x epochs / s)")
        if name != "plain":
            cache, bare = r.get("cache") or {}, r["bare"]["images_per_second"]
            rate = cache.get("steady_images_per_second", 0.0)
            print(f"{'':<28}cache build {r['cache_seconds']:.1f} s (streamed to disk, stats "
                  f"pass included), {cache.get('images_per_second', 0.0):.1f} images/s "
                  "overall, first batch (tracing) included")
            print(f"{'':<28}steady cache-build rate {rate:.1f} images/s = "
                  f"{rate / bare:.2f}x the bare forward {bare:.1f} images/s "
                  f"({r['bare']['precision']}) (bar: >= 0.9); "
                  f"{cache.get('bytes_per_image', 0) / 1024:.0f} KB/image on disk; "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB")
            if decode:
                bound = 1 / (1 / bare + 1 / decode)
                print(f"{'':<28}input pipeline alone {decode:.1f} images/s: sharing the CPU, "
                      f"forward + decode can reach {bound:.1f} images/s = {bound / bare:.2f}x "
                      "the bare rate")
            serving = r["precision"].get("serving", {})
            if "top1_agreement" in serving:
                print(f"{'':<28}float32 export vs {r['precision']['precision']} on "
                      f"{serving['images']} eval images: top-1 agreement "
                      f"{serving['top1_agreement']:.3f}, max score difference "
                      f"{serving['max_score_difference']:.4f}, pooled-feature relative error "
                      f"{serving['feature_relative_error']:.4f}")
    trainers = [k for k in results if k.startswith("trainer:")]
    if "plain" in results:
        plain = results["plain"]
        for key in trainers:
            ours = results[key]
            phase1_ratio = plain["phase1_seconds"] / (ours["phase1_seconds"]
                                                      + ours["cache_seconds"])
            print(f"phase 1 speed-up, plain / trainer {ours['precision']['precision']} (cache "
                  f"included): {phase1_ratio:.2f}x (bar: >= 20)")
            if args.phase2_epochs and ours.get("phase2_epochs_run"):
                per_epoch = (ours["phase2_seconds"] / ours["phase2_epochs_run"]) / (
                    plain["phase2_seconds"] / args.phase2_epochs)
                print(f"phase 2 time per epoch, trainer {ours['precision']['precision']} / "
                      f"plain: {per_epoch:.2f}")
    if len(trainers) > 1:
        a, b = (results[k] for k in trainers[:2])
        print(f"same seed, {a['precision']['precision']} vs {b['precision']['precision']}: "
              f"eval accuracy {a['eval_accuracy']:.3f} vs {b['eval_accuracy']:.3f}, phase-1 "
              f"val accuracy {a['phase1_val_accuracy']:.3f} vs {b['phase1_val_accuracy']:.3f}, "
              f"trainer total {a['total_seconds']:.0f} s vs {b['total_seconds']:.0f} s")
    if "plain" in results and "pipeline" in results:
        phase1, phase2 = (int(e) for e in args.pipeline_epochs.split(","))
        plain = results["plain"]
        plain_same_epochs = (plain["phase1_seconds"] / args.phase1_epochs * phase1
                             + plain["phase2_seconds"] / max(args.phase2_epochs, 1) * phase2)
        ratio = results["pipeline"]["total_seconds"] / plain_same_epochs
        print(f"whole pipeline ({phase1}+{phase2} epochs) / plain training alone at the same "
              f"epochs ({plain_same_epochs:.0f} s, scaled per epoch): {ratio:.2f} (bar: <= 0.3)")
        components = results["pipeline"].get("components") or []
        if components:
            print("pipeline components: " + ", ".join(
                f"{c.get('component')} {c.get('seconds', 0):.0f} s" for c in components
                if isinstance(c, dict)))
    print("=" * 78)


if __name__ == "__main__":
    main()
