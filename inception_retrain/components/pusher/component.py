"""ServingPusher: a blessed model becomes <push_base>/<next integer>/, atomically.

Replaces TFX's Pusher, which writes <base>/<unix timestamp>/ by copying files in place (a poll
in between can see a partial version) and never deletes old versions. The filesystem work is in
serving.versions; this is the TFX adapter. Not blessed -> nothing is written and the
served version stays as it is.
"""
import logging

from tfx.components.util import model_utils
from tfx.dsl.component.experimental.annotations import (
    InputArtifact,
    OutputArtifact,
    Parameter,
)
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from inception_retrain.components.evaluator import contract as evaluator_contract
from inception_retrain.components.pusher.contract import (
    ALREADY_SERVED,
    PRUNED_VERSIONS,
    PUSHED,
    PUSHED_DESTINATION,
    PUSHED_VERSION,
)
from inception_retrain.serving import versions


@component
def ServingPusher(
    model: InputArtifact[standard_artifacts.Model],
    model_blessing: InputArtifact[standard_artifacts.ModelBlessing],
    pushed_model: OutputArtifact[standard_artifacts.PushedModel],
    push_base: Parameter[str],
    keep_versions: Parameter[int],
):
    if not model_utils.is_model_blessed(model_blessing):
        logging.info("model %s is not blessed: nothing pushed, %s unchanged", model.uri,
                     push_base)
        pushed_model.set_int_custom_property(PUSHED, 0)
        return
    model_dir = path_utils.serving_model_path(model.uri,
                                              path_utils.is_old_model_artifact(model))
    # Compare and swap: with the served-model baseline, push only if what is served is still
    # what the gate compared with (a cached blessing, or another writer, could differ).
    gated_against = model_blessing.has_custom_property(evaluator_contract.SERVED_AT_GATE_PROPERTY)
    published = versions.publish(
        model_dir, push_base, keep_versions, source=model.uri, check_served=gated_against,
        expect_served=evaluator_contract.served_at_gate(model_blessing.get_string_custom_property(
            evaluator_contract.SERVED_AT_GATE_PROPERTY)) if gated_against else None)
    if published.already_served:
        logging.info("%s is already served as version %d (%s): nothing copied", model.uri,
                     published.version, published.path)
    else:
        logging.info("pushed %s as version %d (%s); removed old versions %s", model.uri,
                     published.version, published.path, published.pruned or "none")
    pushed_model.set_int_custom_property(PUSHED, 1)
    pushed_model.set_int_custom_property(ALREADY_SERVED, int(published.already_served))
    pushed_model.set_string_custom_property(PUSHED_DESTINATION, published.path)
    pushed_model.set_int_custom_property(PUSHED_VERSION, published.version)
    pushed_model.set_string_custom_property(PRUNED_VERSIONS,
                                            ",".join(map(str, published.pruned)))
