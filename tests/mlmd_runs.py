"""A pipeline run written into a real ML Metadata store (SQLite) the way TFX's LocalDagRunner
records one: contexts pipeline, pipeline_run and node, executions with their states, output
artifacts joined by OUTPUT events. The unit tests that read runs (run_reading, the listing
commands) build their stores with it."""
import json
from pathlib import Path

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2

COMPLETE, FAILED = metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.FAILED


class FakeRun:
    """Writes one pipeline run into a fresh SQLite store: contexts pipeline, pipeline_run and
    node, executions with states, output artifacts joined by OUTPUT events under their key."""

    def __init__(self, tmp_path: Path, pipeline: str = "p", run_id: str = "run-1"):
        self.root = tmp_path / "root"
        self.path = str(tmp_path / "metadata.sqlite")
        connection = metadata_store_pb2.ConnectionConfig()
        connection.sqlite.filename_uri = self.path
        self.store = metadata_store.MetadataStore(connection)
        self.types = {}
        self.nodes = {}   # one node context per node, shared by the runs (as TFX does)
        self.pipeline = self._context("pipeline", pipeline)
        self.run = self._context("pipeline_run", run_id)
        self.pipeline_name = pipeline

    def _type(self, kind, name):
        if (kind, name) not in self.types:
            proto = {"context": metadata_store_pb2.ContextType,
                     "execution": metadata_store_pb2.ExecutionType,
                     "artifact": metadata_store_pb2.ArtifactType}[kind](name=name)
            if kind == "artifact":
                proto.properties["split_names"] = metadata_store_pb2.STRING
            put = {"context": self.store.put_context_type,
                   "execution": self.store.put_execution_type,
                   "artifact": self.store.put_artifact_type}[kind]
            self.types[kind, name] = put(proto)
        return self.types[kind, name]

    def _context(self, type_name, name):
        context = metadata_store_pb2.Context(type_id=self._type("context", type_name), name=name)
        context.id = self.store.put_contexts([context])[0]
        return context

    def next_run(self, run_id: str) -> None:
        """Executions from now on belong to a new pipeline_run context: the next run."""
        self.run = self._context("pipeline_run", run_id)

    def execution(self, node: str, state=COMPLETE, outputs=None, properties=None):
        """outputs: {key: (uri, {custom property: value}, split names or None)}."""
        execution = metadata_store_pb2.Execution(
            type_id=self._type("execution", node), last_known_state=state)
        for name, value in (properties or {}).items():
            execution.custom_properties[name].string_value = value
        if node not in self.nodes:
            self.nodes[node] = self._context("node", f"{self.pipeline_name}.{node}")
        node_context = self.nodes[node]
        artifacts_and_events = []
        for key, (uri, custom, splits) in (outputs or {}).items():
            artifact = metadata_store_pb2.Artifact(type_id=self._type("artifact", key), uri=uri)
            if splits is not None:
                artifact.properties["split_names"].string_value = json.dumps(splits)
            for name, value in custom.items():
                field = "int_value" if isinstance(value, int) else "string_value"
                setattr(artifact.custom_properties[name], field, value)
            event = metadata_store_pb2.Event(type=metadata_store_pb2.Event.OUTPUT)
            event.path.steps.add().key = key
            event.path.steps.add().index = 0
            artifacts_and_events.append((artifact, event))
        self.store.put_execution(execution, artifacts_and_events,
                                 [self.pipeline, self.run, node_context])

    def folder(self, *parts) -> Path:
        path = self.root.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path


def write_statistics(folder: Path, counts):
    """StatisticsGen's FeatureStats.pb per split under folder: {split: {class: examples}} as
    the label feature's rank histogram (what run_reading counts classes from)."""
    for split, by_class in counts.items():
        stats = statistics_pb2.DatasetFeatureStatisticsList()
        feature = stats.datasets.add().features.add()
        feature.path.step.append("label")
        for name, count in by_class.items():
            feature.string_stats.rank_histogram.buckets.add(label=name, sample_count=count)
        (folder / f"Split-{split}").mkdir()
        (folder / f"Split-{split}" / "FeatureStats.pb").write_bytes(stats.SerializeToString())
