"""Shared fixtures: the real datasets beside the repository, and one real pipeline run on a
handful of small flower photos that several test modules inspect (it costs a few minutes).

tests/unit/ mirrors the code's folders; tests/e2e/ runs pipelines, and each of its tests is marked
`e2e`, so `./test.sh -m "not e2e"` is the fast part. Tests run on pytest-xdist workers (pytest.ini),
a file (or the files using the shared run) on one worker (pytest_xdist_make_scheduler)."""
import ast
import contextlib
import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

from inception_retrain.pipeline import config as config_lib

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
FLOWERS = SHARED_DATASETS / "flowers"
KATHER = SHARED_DATASETS / "kather2016-240"
E2E_CLASSES = ("daisy", "dandelion", "roses")
E2E_IMAGES_PER_CLASS = 8


E2E_DIR = Path(__file__).resolve().parent / "e2e"


SHARED_RUN = "flowers_run"


def pytest_itemcollected(item):
    if E2E_DIR in Path(str(item.fspath)).resolve().parents:
        item.add_marker(pytest.mark.e2e)


def _test_files(folder: Path):
    for path in sorted(folder.glob("test_*.py")):
        yield f"{folder.parent.name}/{folder.name}/{path.name}", ast.parse(path.read_text())


def files_using(fixture: str, folder: Path = E2E_DIR) -> List[str]:
    """Test files (relative to the rootdir) with a function (test or fixture) that takes
    `fixture`: read from the sources, as the scheduler sees only node ids."""
    return [name for name, tree in _test_files(folder)
            if any(isinstance(node, ast.FunctionDef)
                   and fixture in {arg.arg for arg in node.args.args}
                   for node in ast.walk(tree))]


def files_sharing_fixtures(folder: Path = E2E_DIR) -> List[str]:
    """Test files that define a fixture wider than a test (module or session scope)."""
    return [name for name, tree in _test_files(folder)
            if any(isinstance(node, ast.keyword) and node.arg == "scope"
                   for node in ast.walk(tree))]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """How pytest-xdist's workers share the suite (pytest.ini): a unit test file on one worker, so
    its module fixtures are built once; the files using the shared flowers_run (some of them run
    it again in place) together on one worker; an end-to-end file with module fixtures on one
    worker; other end-to-end tests each on whichever worker is free (each has its own work
    dir). (xdist's own --dist loadgroup cannot group on pytest 9: it renames node ids through
    an attribute pytest 9 no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    shared = set(files_using(SHARED_RUN))
    together = set(files_sharing_fixtures())
    e2e = f"{E2E_DIR.parent.name}/{E2E_DIR.name}/"

    class FileOrSharedRun(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            if path in shared:
                return SHARED_RUN
            if path.startswith(e2e) and path not in together:
                return nodeid   # a pipeline run of its own: on whichever worker is free
            return path

    return FileOrSharedRun(config, log)


def require_dataset(path: Path) -> Path:
    if not path.is_dir():
        pytest.skip(f"dataset {path} is absent: tests on real images need ../shared/datasets "
                    "beside the repository")
    return path


def copy_smallest_images(source: Path, destination: Path, classes, per_class: int) -> Path:
    """A handful of real images per class (the smallest files, for speed) in a fresh folder."""
    for name in classes:
        files = sorted((source / name).iterdir(), key=lambda p: (p.stat().st_size, p.name))
        (destination / name).mkdir(parents=True)
        for path in files[:per_class]:
            shutil.copy(path, destination / name / path.name)
    return destination


def write_class_images(root: Path, counts: Dict[str, int]) -> Path:
    """<root>/<class>/<class>_<i>.jpg: small JPEGs, each of its own size and colour."""
    from PIL import Image

    for k, (name, count) in enumerate(counts.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):  # no two files alike, within or across classes
            Image.new("RGB", (40 + i, 32), (i * 15 % 255, (90 + 40 * k) % 255, 160)).save(
                root / name / f"{name}_{i}.jpg", quality=90)
    return root


def read_examples(examples_uri: str):
    """{split: [tf.Example]} from an Examples artifact's gzipped TFRecords."""
    import tensorflow as tf

    out = {}
    for split_dir in sorted(tf.io.gfile.glob(f"{examples_uri}/Split-*")):
        files = tf.io.gfile.glob(f"{split_dir}/*.gz")
        out[split_dir.rsplit("Split-", 1)[1]] = [
            tf.train.Example.FromString(r.numpy())
            for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
    return out


def run_data_gate_pipeline(example_gen, root: Path, pipeline_name: str, **gate) -> str:
    """ImageExampleGen -> statistics, curated schema, validation -> DataGate (with `gate` as its
    parameters) under LocalDagRunner; returns the metadata store's path."""
    from tfx import v1 as tfx

    from inception_retrain.components.data_gate.component import DataGate
    from inception_retrain.pipeline.pipeline import default_schema_path

    statistics = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema = tfx.components.ImportSchemaGen(schema_file=default_schema_path())
    validator = tfx.components.ExampleValidator(statistics=statistics.outputs["statistics"],
                                                schema=schema.outputs["schema"])
    data_gate = DataGate(examples=example_gen.outputs["examples"],
                         statistics=statistics.outputs["statistics"],
                         anomalies=validator.outputs["anomalies"], **gate)
    metadata_path = str(root / "metadata.sqlite")
    tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
        pipeline_name=pipeline_name, pipeline_root=str(root / "pipeline_root"),
        components=[example_gen, statistics, schema, validator, data_gate],
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            metadata_path)))
    return metadata_path


def quick_config(work_dir: Path, data_root: Path, **evaluation) -> config_lib.PipelineConfig:
    """A real pipeline configuration scaled down to seconds: few epochs, small batches."""
    return config_lib.load(overrides={
        "work_dir": str(work_dir),
        "data": {"root": str(data_root), "min_examples_per_class": 1},
        "training": {"base_weights": "none", "batch_size": 8, "phase1_epochs": 3,
                     "phase2_epochs": 1},
        # 8 images per class leave 1 to 3 eval images per class: below the default minimum
        # evidence (evaluation.min_eval_*), which would refuse every blessing. These runs test
        # the pipeline's mechanics, so they ask for one image (and one slide) per class;
        # tests/e2e/test_evaluator_gate.py tests the minimum itself.
        "evaluation": dict({"accuracy_floor": 0.0, "min_eval_examples_per_class": 1,
                            "min_eval_groups_per_class": 1}, **evaluation),
    })


@dataclasses.dataclass(frozen=True)
class PipelineRun:
    config: config_lib.PipelineConfig
    data_root: Path
    classes: List[str]
    summary: Dict


@pytest.fixture(scope="session")
def flowers_run(tmp_path_factory) -> PipelineRun:
    """The whole DAG, run once with LocalDagRunner on 3 x 8 small flower JPEGs."""
    from inception_retrain.pipeline import local_runner
    from inception_retrain.run_reading import reader

    require_dataset(FLOWERS)
    base = tmp_path_factory.mktemp("flowers_e2e")
    data_root = copy_smallest_images(FLOWERS, base / "data", E2E_CLASSES, E2E_IMAGES_PER_CLASS)
    config = quick_config(base / "work", data_root)
    local_runner.run(config, local_runner.preflight(config))
    return PipelineRun(config, data_root, list(E2E_CLASSES),
                       reader.read(config.metadata_path, config.pipeline_name).to_dict())


# A process inside the run lock of the work dir argv[1], as a live `run` is, until killed.
RUN_LOCK_HOLDER = """
import sys, time
from inception_retrain.pipeline import run_lock
with run_lock.run_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


@contextlib.contextmanager
def holding_run_lock(work_dir):
    """Another process holding work_dir's run lock for the duration of the block."""
    process = subprocess.Popen([sys.executable, "-c", RUN_LOCK_HOLDER, str(work_dir)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "held"
        yield process
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def make_quick_config():
    """quick_config as a fixture, for test modules that take helpers by injection."""
    return quick_config


@pytest.fixture
def env_with_legacy_keras() -> Dict[str, str]:
    """Environment for subprocesses that load TensorFlow the way the pipeline does."""
    return dict(os.environ, TF_USE_LEGACY_KERAS="1")
