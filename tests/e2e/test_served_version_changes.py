"""A rerun after another writer changed what is served (issue 13, item 3): the cached blessing
made against the old served version is not reused; the Evaluator runs again against the version
served now, and the Pusher pushes only if that is still what is served. Real LocalDagRunner."""
from conftest import (
    E2E_CLASSES,
    E2E_IMAGES_PER_CLASS,
    FLOWERS,
    copy_smallest_images,
    quick_config,
    require_dataset,
)

from inception_retrain.components.evaluator import contract as evaluator_contract
from inception_retrain.pipeline import local_runner, mlmd
from inception_retrain.run_reading import reader
from inception_retrain.serving import versions


def test_rerun_evaluates_against_the_version_served_now(tmp_path):
    data = copy_smallest_images(require_dataset(FLOWERS), tmp_path / "data", E2E_CLASSES, E2E_IMAGES_PER_CLASS)
    config = quick_config(tmp_path / "work", data)
    local_runner.run(config, local_runner.preflight(config))
    first = reader.read(config.metadata_path, config.pipeline_name)
    assert first.push.pushed and first.push.version == 1

    # Another writer serves a new version meanwhile (a rollback elsewhere, a second pipeline).
    versions.publish(versions.version_path(config.push_base, 1), config.push_base, keep=5,
                     source="another-writer")
    assert versions.served_version(config.push_base) == 2

    local_runner.run(config, local_runner.preflight(config))
    second = reader.read(config.metadata_path, config.pipeline_name)
    states = {c.component: c.state for c in second.components}
    assert states["Trainer"] == "CACHED", states
    assert states["Evaluator"] == "COMPLETE", "a blessing made against version 1 was reused"
    assert second.evaluation.baseline["source"] == "served"
    assert second.evaluation.baseline["version"] == 2
    store = mlmd.open_store(config.metadata_path)
    nodes = mlmd.latest_run_executions(store, config.pipeline_name)
    blessing = mlmd.output_artifacts(store, nodes["Evaluator"])["blessing"][0]
    served_at_gate = blessing.custom_properties[evaluator_contract.SERVED_AT_GATE_PROPERTY]
    assert served_at_gate.string_value == "2"
    assert second.push.pushed and second.push.version == 3 and not second.push.already_served
