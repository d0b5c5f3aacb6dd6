"""Which InceptionV3 layers train in each phase, and BatchNorm staying in inference mode."""
import numpy as np
import pytest
import tf_keras

from inception_retrain.components.trainer import model as model_lib

IMAGE_SIZE = 75  # InceptionV3's minimum input; same layers, fast to build and run


@pytest.fixture(scope="module")
def base():
    return model_lib.build_base(IMAGE_SIZE, weights=None)


def _trainable_weight_layers(base):
    return [layer.name for layer in base.layers if layer.trainable_weights]


def test_phase1_freezes_the_whole_base(base):
    model_lib.freeze_for_phase(base, 1, unfreeze_blocks=2)
    assert base.trainable_weights == []
    assert len(base.non_trainable_weights) == len(base.weights) > 0


@pytest.mark.parametrize("blocks, first_trainable_block", [(1, "mixed10"), (2, "mixed9"),
                                                            (3, "mixed8")])
def test_phase2_unfreezes_exactly_the_top_blocks(base, blocks, first_trainable_block):
    model_lib.freeze_for_phase(base, 2, unfreeze_blocks=blocks)
    names = [layer.name for layer in base.layers]
    boundary = names.index(f"mixed{10 - blocks}") + 1
    for index, layer in enumerate(base.layers):
        has_weights = bool(layer.weights)
        is_bn = isinstance(layer, tf_keras.layers.BatchNormalization)
        expected = index >= boundary and has_weights and not is_bn
        assert bool(layer.trainable_weights) == expected, layer.name
    # The first trainable conv sits right after the last frozen block's concatenation.
    trainable = _trainable_weight_layers(base)
    assert trainable and names.index(trainable[0]) > names.index(f"mixed{10 - blocks}")
    assert names.index(trainable[0]) < names.index(first_trainable_block)


def test_phase2_keeps_every_batch_norm_frozen(base):
    model_lib.freeze_for_phase(base, 2, unfreeze_blocks=model_lib.INCEPTION_BLOCKS)
    batch_norms = [l for l in base.layers if isinstance(l, tf_keras.layers.BatchNormalization)]
    assert batch_norms and all(not l.trainable_weights for l in batch_norms)
    assert any(l.trainable_weights for l in base.layers)


def test_unfreeze_zero_blocks_trains_nothing_in_the_base(base):
    model_lib.freeze_for_phase(base, 2, unfreeze_blocks=0)
    assert base.trainable_weights == []


def test_unfreeze_blocks_out_of_range_is_refused(base):
    with pytest.raises(ValueError, match="unfreeze_blocks"):
        model_lib.unfreeze_boundary(base, 12)


def test_batch_norm_runs_in_inference_mode_while_training(base):
    """A training step must neither use batch statistics nor move the moving averages."""
    model_lib.freeze_for_phase(base, 2, unfreeze_blocks=2)
    rng = np.random.default_rng(0)
    features = rng.normal(size=(8, 2048)).astype("float32")
    head = model_lib.build_head(3, features, dropout=0.0)
    classifier = model_lib.build_classifier(base, head)
    images = rng.uniform(-1, 1, size=(4, IMAGE_SIZE, IMAGE_SIZE, 3)).astype("float32")
    # Same output whatever the training flag: BatchNorm uses moving statistics either way.
    np.testing.assert_allclose(classifier(images, training=True).numpy(),
                               classifier(images, training=False).numpy(), rtol=1e-5, atol=1e-5)
    bn = next(l for l in base.layers if isinstance(l, tf_keras.layers.BatchNormalization))
    moving_mean = bn.moving_mean.numpy().copy()
    classifier.compile(optimizer=tf_keras.optimizers.SGD(learning_rate=0.1),
                       loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                       run_eagerly=True)  # same semantics, no minute-long graph build
    top_conv = next(l for l in base.layers[::-1] if isinstance(l, tf_keras.layers.Conv2D))
    kernel_before = top_conv.kernel.numpy().copy()
    classifier.fit(images, np.array([0, 1, 2, 0]), epochs=1, verbose=0)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), moving_mean)
    assert not np.allclose(top_conv.kernel.numpy(), kernel_before), "top block did not train"


def test_head_standardises_features():
    rng = np.random.default_rng(1)
    tiny = rng.normal(scale=1e-4, size=(64, 16)).astype("float32")
    head = model_lib.build_head(2, tiny, dropout=0.0)
    standardised = head.layers[0](tiny).numpy()
    np.testing.assert_allclose(standardised.std(axis=0), 1.0, rtol=0.05)


def test_resolve_weights_none_and_missing_file(tmp_path):
    assert model_lib.resolve_weights("none")[0] is None
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model_lib.resolve_weights(str(tmp_path / "missing.h5"))


def test_local_weights_file_loads_into_the_base(tmp_path):
    """The air-gapped path: a weights file written here loads into a fresh base."""
    source = model_lib.build_base(IMAGE_SIZE, weights=None)
    path = str(tmp_path / "inception_v3_notop.h5")
    source.save_weights(path)
    weights, description = model_lib.resolve_weights(path)
    loaded = model_lib.build_base(IMAGE_SIZE, weights=weights)
    assert path in description
    for expected, actual in zip(source.weights, loaded.weights):
        np.testing.assert_array_equal(expected.numpy(), actual.numpy())
