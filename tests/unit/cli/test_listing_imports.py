"""The read-only commands import no TensorFlow, TFX, TFMA or Beam: each runs in a fresh
interpreter on a work dir whose run index is in step (a store with no runs: the index check
still opens ML Metadata), and prints valid JSON with -o json."""
import json
import subprocess
import sys

import pytest

HEAVY = ("tensorflow", "tfx", "tensorflow_model_analysis", "apache_beam")
_RUN = """
import json, sys
from inception_retrain.cli.main import main
code = main(json.loads(sys.argv[1]))
print("\\n" + json.dumps({"code": code, "heavy": [m for m in json.loads(sys.argv[2])
                                                  if m in sys.modules]}))
"""


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory):
    """A work dir with an empty ML Metadata store (as MLMD creates it) and an empty push
    destination (rollback refuses a missing one)."""
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    work = tmp_path_factory.mktemp("work")
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = str(work / "metadata.sqlite")
    metadata_store.MetadataStore(connection)
    (work / "serving" / "inception_v3").mkdir(parents=True)
    return work


@pytest.mark.parametrize("argv", [["history", "-o", "json"], ["report", "--list", "-o", "json"],
                                  ["rollback", "-o", "json"]])
def test_read_only_commands_import_nothing_heavy_and_print_json(work_dir, argv):
    done = subprocess.run(
        [sys.executable, "-c", _RUN, json.dumps(argv + ["--work-dir", str(work_dir)]),
         json.dumps(HEAVY)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    *printed, last = done.stdout.strip().splitlines()
    result = json.loads(last)
    assert result == {"code": 0, "heavy": []}, done.stderr
    json.loads("\n".join(printed))
    assert done.stderr == ""
