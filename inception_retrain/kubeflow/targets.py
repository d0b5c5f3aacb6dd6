"""What differs between the two Kubeflow targets, and the checks a compile request passes before
any TFX import: paths pods can reach, Beam runner arguments, images and resources per component.

kfp    open-source Kubeflow Pipelines 2: PipelineSpec YAML (what kfp.Client uploads); its
       backend runs only container and importer executors (no resolver, no InfraValidator).
vertex Vertex AI Pipelines: PipelineJob JSON; resolvers run there.

The kfp target's backend version (--kfp-version) decides whether the package gets the exit task
(KFP_VERSIONS); Vertex runs exit tasks with their final status.
"""
import dataclasses
import os
import re
import warnings
from typing import Dict, Mapping, Sequence, Tuple

from inception_retrain.components import node_ids
from inception_retrain.pipeline import config as config_lib

TFX_IMAGE = "gcr.io/tfx-oss-public/tfx:1.16.0"
IMAGE_ROOT = "/pipeline"  # where kubeflow/Dockerfile installs this repository (editable)
IMAGE_SCHEMA_PATH = IMAGE_ROOT + "/schema/schema.pbtxt"


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    extension: str             # of the compiled file
    gpu_type: str              # accelerator type this backend understands
    executor_kinds: Tuple[str, ...]  # deploymentSpec executor kinds the backend runs
    uncached_tasks: Tuple[str, ...]  # tasks that read outside state by path: never cached
    runs_example_gen_driver: bool    # runs lifecycle.preCacheCheck (resolves {SPAN}, ...)
    kfp_launcher: bool               # KFP's launcher copies each artifact to/from a local path


TARGETS = {
    # No driver runs for FileBasedExampleGen on open-source KFP (it ignores the spec's
    # lifecycle.preCacheCheck hook): DataFingerprint (never cached) lists the image files and
    # hands their fingerprint to ImageExampleGen as a parameter, which KFP's cache key holds.
    # Unchanged data: ImageExampleGen and all after it up to the Evaluator come from the cache.
    # ImportSchemaGen may cache on both targets: its key holds schema_path and the image (the
    # default schema is baked into the image); uncached, its new Schema artifact each run would
    # give ExampleValidator and Transform, and so the Trainer, a new cache key every run.
    "kfp": Target("kfp", ".yaml", "nvidia.com/gpu", ("container", "importer"),
                  (node_ids.DATA_FINGERPRINT,), runs_example_gen_driver=False,
                  kfp_launcher=True),
    "vertex": Target("vertex", ".json", "NVIDIA_TESLA_T4",
                     ("container", "importer", "resolver"), (),
                     runs_example_gen_driver=True, kfp_launcher=False),
}


@dataclasses.dataclass(frozen=True)
class KfpVersion:
    """What one open-source KFP backend line can run of a TFX-compiled PipelineSpec."""

    minor: Tuple[int, int]   # (major, minor): the oldest release of the line
    tested: bool             # a profile of tests/e2e/kfp_emulator.py runs it
    exit_task: bool          # its driver resolves a task's final-status input


# The kubeflow/pipelines driver resolves `taskFinalStatus` from 2.14.0 (#11953,
# backend/src/v2/driver/resolve.go); 2.5.0's driver.go leaves it a TODO and fails the task
# ("parameter spec of type ... not implemented yet"). KFP 1.x runs Argo workflows compiled by
# the v1 SDK and takes no PipelineSpec at all. Newest first; the first is the default.
KFP_VERSIONS = {
    "2.17": KfpVersion((2, 17), tested=True, exit_task=True),
    "2.14": KfpVersion((2, 14), tested=True, exit_task=True),
    "2.5": KfpVersion((2, 5), tested=True, exit_task=False),
    "2.4": KfpVersion((2, 4), tested=True, exit_task=False),
}
DEFAULT_KFP_VERSION = next(iter(KFP_VERSIONS))


class UntestedBackendWarning(UserWarning):
    """The kfp target's backend version is one no emulated profile runs."""


class NoExitTaskWarning(UserWarning):
    """The kfp target's backend cannot run the exit task: a failed run will not alert."""


def kfp_version(text: str) -> Tuple[KfpVersion, str]:
    """The KfpVersion of a `--kfp-version` value (MAJOR.MINOR[.PATCH]) and a warning ("" for a
    tested line): refuses 1.x (no PipelineSpec) and what is not a version; a 2.x line no
    profile tests (2.0-2.3, 2.6-2.13, 2.15-2.16, newer than 2.17) is compiled as the newest
    tested line not newer than it (2.0-2.3 as 2.4)."""
    match = re.fullmatch(r"(\d+)\.(\d+)(?:\.\d+)?", text.strip())
    if not match:
        raise config_lib.ConfigError(
            f"--kfp-version expects MAJOR.MINOR (e.g. {DEFAULT_KFP_VERSION}), got {text!r}")
    minor = (int(match.group(1)), int(match.group(2)))
    if minor[0] != 2:
        raise config_lib.ConfigError(
            f"--kfp-version {text}: Kubeflow Pipelines {minor[0]}.x cannot run this package: "
            "TFX's KubeflowV2DagRunner writes a KFP v2 PipelineSpec, which only KFP 2 backends "
            "run (1.x runs Argo workflows of the v1 SDK; TFX 1.16 has no v1 runner)")
    line = f"{minor[0]}.{minor[1]}"
    if line in KFP_VERSIONS:
        return KFP_VERSIONS[line], ""
    older = [v for v in KFP_VERSIONS.values() if v.minor <= minor]
    nearest = max(older, key=lambda v: v.minor) if older else KFP_VERSIONS["2.4"]
    return dataclasses.replace(nearest, minor=minor, tested=False), (
        f"KFP {text} is not tested (tested: {', '.join(KFP_VERSIONS)}): compiled as for "
        f"{nearest.minor[0]}.{nearest.minor[1]}, "
        f"{'with' if nearest.exit_task else 'without'} the exit task"
        + ("" if nearest.exit_task else " (a failed run will not alert)")
        + "; check its driver and launcher against kubeflow/README.md before relying on it")


# What FileBasedExampleGen's driver resolves in an input pattern (tfx.components.example_gen.utils:
# {SPAN}, {SPAN:n}, {VERSION}, {VERSION:n}, {YYYY}, {MM}, {DD}); without the driver the executor
# gets the pattern as written and matches no file.
_DRIVER_SPECS = re.compile(r"\{(?:SPAN|VERSION)(?::\d+)?\}|\{(?:YYYY|MM|DD)\}")


@dataclasses.dataclass(frozen=True)
class Resources:
    """One task's pod: CPU cores and memory in GB (10^9 bytes), GPUs (Trainer)."""

    cpu: float
    memory_gb: float
    gpus: int = 0


# Beam stages run in the pod with the DirectRunner unless beam args pick another runner.
DEFAULT_RESOURCES: Dict[str, Resources] = {
    node_ids.EXAMPLE_GEN: Resources(4, 16),
    node_ids.STATISTICS_GEN: Resources(2, 8),
    node_ids.SCHEMA_GEN: Resources(0.5, 2),
    node_ids.EXAMPLE_VALIDATOR: Resources(1, 4),
    node_ids.DATA_GATE: Resources(1, 4),
    node_ids.TRANSFORM: Resources(4, 16),
    node_ids.TRAINER: Resources(8, 32, gpus=1),
    node_ids.EVALUATOR: Resources(4, 16),
    node_ids.PUSHER: Resources(1, 4),
    node_ids.DATA_FINGERPRINT: Resources(0.5, 2),
    node_ids.RUN_REPORTER: Resources(2, 8),
    node_ids.TEST_SPLIT_EVALUATOR: Resources(4, 16),
    node_ids.FINAL_REPORT: Resources(1, 4),
}
FALLBACK_RESOURCES = Resources(1, 4)  # a component not listed above (e.g. one added later)

_RESOURCE_KEYS = {"cpu": "cpu", "memory": "memory_gb", "gpu": "gpus"}
_PIPELINE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,127}")  # KubeflowV2DagRunner's own rule


def on_volume(path: str, mount_path: str) -> bool:
    """Whether path is mount_path or below it (a path, not a URI)."""
    return "://" not in path and (path + "/").startswith(mount_path.rstrip("/") + "/")


@dataclasses.dataclass(frozen=True)
class Volume:
    """A PersistentVolumeClaim mounted into every task at mount_path (kfp target: the spec's
    Kubernetes platform config, as kfp-kubernetes' mount_pvc writes it)."""

    claim: str
    mount_path: str

    def holds(self, path: str) -> bool:
        return on_volume(path, self.mount_path)


_CLAIM_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,251}[a-z0-9])?")  # a Kubernetes object name
# Pipeline roots the KFP launcher accepts (objectstore.ParseBucketConfig); TFX reads and writes
# their artifacts at the launcher's local copies (kubeflow/entrypoint.py).
KFP_PIPELINE_ROOT_SCHEMES = ("gs://", "minio://", "s3://")


def parse_volumes(assignments: Sequence[str]) -> Tuple[Volume, ...]:
    """`CLAIM:/mount/path` strings (--volume), checked."""
    volumes = []
    for assignment in assignments:
        claim, sep, mount_path = assignment.partition(":")
        if not sep or not _CLAIM_NAME.fullmatch(claim):
            raise config_lib.ConfigError(
                "--volume expects CLAIM:/MOUNT/PATH with CLAIM a PersistentVolumeClaim's name "
                f"(lower-case letters, digits, '-'), e.g. lab-data:/mnt/lab, got {assignment!r}")
        normal = os.path.normpath(mount_path)
        if not mount_path.startswith("/") or normal == "/" or normal != mount_path.rstrip("/"):
            raise config_lib.ConfigError(
                f"--volume {claim}: the mount path must be an absolute, normalised path other "
                f"than /, e.g. /mnt/lab, got {mount_path!r}")
        for other in volumes:
            if other.claim == claim or other.holds(normal) or Volume(claim, normal).holds(
                    other.mount_path):
                raise config_lib.ConfigError(
                    f"--volume {assignment!r} and {other.claim}:{other.mount_path}: each claim "
                    "once, at a mount path of its own (not one inside another)")
        volumes.append(Volume(claim, normal))
    return tuple(volumes)


@dataclasses.dataclass(frozen=True)
class CompileOptions:
    """Everything a compile needs besides the pipeline configuration."""

    target: str
    output: str
    image: str
    trainer_image: str = ""          # "" = image
    gpu_type: str = ""               # "" = the target's
    resources: Mapping[str, Resources] = dataclasses.field(
        default_factory=lambda: dict(DEFAULT_RESOURCES))
    schema_path: str = IMAGE_SCHEMA_PATH
    volumes: Tuple[Volume, ...] = ()  # claims mounted into every task (kfp only)
    kfp_version: str = DEFAULT_KFP_VERSION  # the kfp target's backend (KFP_VERSIONS)

    @property
    def target_spec(self) -> Target:
        return TARGETS[self.target]

    @property
    def exit_task(self) -> bool:
        """Whether the package gets the exit task (the backend resolves its final status)."""
        return self.target == "vertex" or kfp_version(self.kfp_version)[0].exit_task

    def images(self) -> Dict[str, str]:
        return {"default": self.image, node_ids.TRAINER: self.trainer_image or self.image}

    def resources_for(self, task: str) -> Resources:
        return self.resources.get(task, FALLBACK_RESOURCES)


def parse_resources(assignments: Sequence[str]) -> Dict[str, Resources]:
    """`Component.cpu|memory|gpu=N` overrides on top of DEFAULT_RESOURCES."""
    result = dict(DEFAULT_RESOURCES)
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        component, dot, field = key.strip().partition(".")
        if not (sep and dot) or field not in _RESOURCE_KEYS:
            raise config_lib.ConfigError(
                f"--resource expects COMPONENT.cpu|memory|gpu=NUMBER (e.g. Trainer.gpu=2), "
                f"got {assignment!r}")
        if component not in DEFAULT_RESOURCES:
            raise config_lib.ConfigError(
                f"--resource {key}: unknown component {component!r}; known: "
                f"{', '.join(DEFAULT_RESOURCES)}")
        try:
            value = float(text)
        except ValueError:
            raise config_lib.ConfigError(f"--resource {key} must be a number, got {text!r}") \
                from None
        if value < 0 or (field == "gpu" and not value.is_integer()) or (
                field != "gpu" and value == 0):
            raise config_lib.ConfigError(
                f"--resource {key} must be {'a whole number >= 0' if field == 'gpu' else '> 0'}"
                f", got {text!r}")
        result[component] = dataclasses.replace(
            result[component], **{_RESOURCE_KEYS[field]: int(value) if field == "gpu" else value})
    return result


def _require_pod_path(key: str, value: str, options: "CompileOptions") -> None:
    """A path TFX opens by name in every pod: gs:// (TFX's own filesystem), or on kfp a path on
    a mounted volume."""
    if value.startswith("gs://") or any(v.holds(value) for v in options.volumes):
        return
    if options.target == "vertex":
        raise config_lib.ConfigError(f"{key} must be a gs:// URI for Vertex AI, got {value!r}")
    volumes = ", ".join(f"{v.claim}:{v.mount_path}" for v in options.volumes) or "none given"
    raise config_lib.ConfigError(
        f"{key} must be a gs:// URI or a path on a volume mounted with --volume CLAIM:/MOUNT "
        f"(volumes: {volumes}), got {value!r}: Kubeflow pods do not see this machine's files, "
        "and TFX reads this by path (it has no minio:// or s3:// filesystem here)")


def _require_pipeline_root(value: str, target: str) -> None:
    schemes = KFP_PIPELINE_ROOT_SCHEMES if target == "kfp" else ("gs://",)
    if not value.startswith(schemes):
        raise config_lib.ConfigError(
            f"work_dir (the pipeline root is <work_dir>/pipeline_root) must start with "
            f"{' or '.join(schemes)} for the {target} target, got {value!r}"
            + (": KFP's launcher accepts only object-store pipeline roots (minio:// is the "
               "object store of an on-premises install)" if target == "kfp" else ""))


def check_beam_args(args: Sequence[str]) -> None:
    """Refuses Beam arguments a runner would fail on only after the pod started."""
    flags = {}
    for arg in args:
        if not arg.startswith("--"):
            raise config_lib.ConfigError(f"beam_args: each argument starts with --, got {arg!r}")
        name, _, value = arg[2:].partition("=")
        flags[name] = value
    runner = flags.get("runner", "DirectRunner")
    needs = {
        "DataflowRunner": ("project", "region", "temp_location"),
        "FlinkRunner": ("flink_master",),
        "SparkRunner": ("spark_master_url",),
        "PortableRunner": ("job_endpoint",),
        "DirectRunner": (),
    }
    if runner not in needs:
        raise config_lib.ConfigError(
            f"beam_args: --runner={runner} is not one of {', '.join(needs)}")
    missing = [f"--{flag}" for flag in needs[runner] if not flags.get(flag)]
    if missing:
        raise config_lib.ConfigError(
            f"beam_args: --runner={runner} needs {', '.join(missing)}")
    if runner == "DataflowRunner":
        if not flags["temp_location"].startswith("gs://"):
            raise config_lib.ConfigError("beam_args: --temp_location must be a gs:// URI")
        if not (flags.get("sdk_container_image") or flags.get("setup_file")):
            raise config_lib.ConfigError(
                "beam_args: Dataflow workers must import components.* (the ImageExampleGen "
                "executor and preprocessing_fn): add --sdk_container_image=<the pipeline image> "
                f"or --setup_file={IMAGE_ROOT}/setup.py")


def check(config: config_lib.PipelineConfig, options: CompileOptions) -> None:
    """Every check that needs no TFX: stops a bad request before any work."""
    if options.target not in TARGETS:
        raise config_lib.ConfigError(
            f"--target must be one of {', '.join(TARGETS)}, got {options.target!r}")
    target = options.target_spec
    if target.name == "kfp":
        version, untested = kfp_version(options.kfp_version)
        if untested:
            warnings.warn(UntestedBackendWarning(untested))
        if not version.exit_task:
            warnings.warn(NoExitTaskWarning(
                f"KFP {options.kfp_version} does not resolve a task's final status (from 2.14): "
                "the package has no exit task, so a failed run writes no report and alerts no "
                "one (its task logs and the KFP UI say why it failed; kubeflow/README.md)"))
    if not options.output.endswith(target.extension):
        raise config_lib.ConfigError(
            f"--output for target {target.name} must end with {target.extension} "
            f"({'the PipelineSpec YAML kfp.Client uploads' if target.name == 'kfp' else 'a Vertex PipelineJob'}), "
            f"got {options.output!r}")
    if not _PIPELINE_NAME.fullmatch(config.pipeline_name):
        raise config_lib.ConfigError(
            "pipeline_name must be lower-case letters, digits and '-' (starting with a letter "
            f"or digit) for Kubeflow, got {config.pipeline_name!r}")
    if not config.data.root:
        raise config_lib.ConfigError(
            "data.root must be set for Kubeflow (the embedded default dataset exists only "
            "locally): --data-root gs://bucket/images")
    if options.volumes and target.name != "kfp":
        raise config_lib.ConfigError(
            f"--volume: the {target.name} target mounts no PersistentVolumeClaims; use gs:// "
            "paths")
    _require_pod_path("data.root", config.data.root, options)
    _require_pipeline_root(config.work_dir, target.name)
    _require_pod_path("serving_dir (the Pusher writes <serving_dir>/<model_name>/<version>)",
                      os.path.dirname(config.push_base), options)
    weights = config.training.base_weights
    if weights not in ("imagenet", "none") and not weights.startswith("/"):
        raise config_lib.ConfigError(
            "training.base_weights must be imagenet, none or an absolute path of a weights file "
            f"inside the image (the Trainer opens it as a local file), got {weights!r}")
    for key, image in (("--image", options.image), ("--trainer-image", options.trainer_image)):
        if (key == "--image" or image) and (not image or any(c.isspace() for c in image)):
            raise config_lib.ConfigError(
                f"{key} must be an image reference (the image built from kubeflow/Dockerfile), "
                f"got {image!r}")
    spec = _DRIVER_SPECS.search(config.data.input_pattern)
    if spec and not target.runs_example_gen_driver:
        raise config_lib.ConfigError(
            f"data.input_pattern {config.data.input_pattern!r} holds {spec.group(0)}, which "
            f"ExampleGen's driver resolves (the spec's lifecycle.preCacheCheck); the "
            f"{target.name} target's backend never runs that driver (open-source Kubeflow "
            "Pipelines), so ImageExampleGen would look for the pattern as written. Use "
            "--target vertex, or a plain pattern such as '*/*' with data.root (the data_root "
            "runtime parameter) set to the span's folder for each run")
    check_beam_args(config.beam_args)
    if options.volumes and "--runner=DataflowRunner" in config.beam_args and any(
            v.holds(config.data.root) for v in options.volumes):
        raise config_lib.ConfigError(
            "beam_args: Dataflow workers do not mount the cluster's volumes, so they cannot read "
            f"data.root {config.data.root!r}; use a gs:// data root with Dataflow")
