"""What the readers of a run need of it: which components ran, and each one's input and output
artifacts (ML Metadata Artifact protos). Read from the local ML Metadata store, or given by a
pipeline step from its own input artifacts (components/run_reporter: a Kubeflow run, whose
pods have no access to the store)."""
import dataclasses
from typing import Any, Dict, List, Mapping, Optional


@dataclasses.dataclass(frozen=True)
class RunArtifacts:
    """{component: {key: [artifact]}} of the run's outputs and inputs; `ran` lists the
    components that executed (their outputs may still be missing: a failed execution)."""

    ran: tuple
    outputs: Mapping[str, Mapping[str, List[Any]]]
    inputs: Mapping[str, Mapping[str, List[Any]]] = dataclasses.field(default_factory=dict)

    def output(self, component: str, key: str) -> Optional[Any]:
        """The first artifact of one output, or None."""
        found = self.outputs.get(component, {}).get(key)
        return found[0] if found else None

    def input(self, component: str, key: str) -> Optional[Any]:
        found = self.inputs.get(component, {}).get(key)
        return found[0] if found else None

    @classmethod
    def from_store(cls, store, nodes: Dict[str, Any]) -> "RunArtifacts":
        """From ML Metadata: nodes is {component: execution} of one run (mlmd.run_executions)."""
        from inception_retrain.pipeline import mlmd

        return cls(ran=tuple(nodes),
                   outputs={node: mlmd.output_artifacts(store, e) for node, e in nodes.items()},
                   inputs={node: mlmd.input_artifacts(store, e) for node, e in nodes.items()})
