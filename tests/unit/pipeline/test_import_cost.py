"""What a run imports stays off TFX's v1 facade: `tfx.v1` loads every extension, the Vertex AI
clients among them (about 3 s of each process's start-up: a local run, the CLI, each Kubeflow
pod whose executor is one of ours). Checked in a fresh interpreter, as a run starts."""
import json
import subprocess
import sys

# The DAG, the local runner's TFX imports and every executor a pod of ours runs.
RUN_IMPORTS = """
import json, sys
import inception_retrain.pipeline.pipeline
import inception_retrain.components.trainer.run
import inception_retrain.components.evaluator.evaluator
import inception_retrain.components.image_example_gen.executor
import inception_retrain.components.data_fingerprint.component
import inception_retrain.components.data_gate.component
import inception_retrain.components.pusher.component
from tfx.orchestration.local.local_dag_runner import LocalDagRunner
print(json.dumps(sorted(m for m in ("tfx.v1", "google.cloud.aiplatform") if m in sys.modules)))
"""


def test_a_run_does_not_import_tfx_v1_or_the_vertex_ai_clients():
    completed = subprocess.run([sys.executable, "-c", RUN_IMPORTS], capture_output=True,
                               text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    loaded = json.loads(completed.stdout.strip().splitlines()[-1])
    assert loaded == [], f"imported by a run: {loaded} (import TFX's own modules instead)"
