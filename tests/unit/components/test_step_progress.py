"""Issue 26: progress inside long epochs. A line every interval seconds within an epoch (steps,
images/s, ETA for the epoch and the phase), throttled by wall time: driven by a fake clock."""
import logging

from inception_retrain.components.trainer import step_progress
from inception_retrain.components.trainer.step_progress import StepProgress


def test_a_line_only_once_the_interval_has_passed():
    progress = StepProgress("phase2", epochs=3, steps=100, images=3200, interval=15)
    progress.epoch_begin(0, now=1000.0)
    assert progress.step_end(10, now=1010.0) is None  # 10 s in: too early
    line = progress.step_end(20, now=1016.0)
    assert line == ("phase2 epoch 1/3  step 20/100  40.0 images/s  "
                    "ETA epoch 1m04s, phase 3m44s")
    assert progress.step_end(21, now=1020.0) is None  # 4 s after the last line
    assert progress.step_end(40, now=1031.0).startswith("phase2 epoch 1/3  step 40/100")


def test_the_phase_eta_uses_the_pace_of_the_finished_epochs():
    """Epoch 1 took 100 s (validation included); epoch 2 runs at the same step rate."""
    progress = StepProgress("phase2", epochs=3, steps=100, images=3200, interval=10)
    progress.epoch_begin(0, now=0.0)
    progress.epoch_begin(1, now=100.0)
    line = progress.step_end(50, now=140.0)  # 40 s for 50 steps: 40 s left in the epoch
    assert line.endswith("ETA epoch 40s, phase 2m20s")  # 40 s + one more 100 s epoch


def test_a_resumed_phase_counts_from_its_first_epoch_and_the_last_batch_may_be_short():
    progress = StepProgress("phase1", epochs=5, steps=4, images=100, interval=10)
    progress.epoch_begin(3, now=0.0)
    assert progress.step_end(4, now=20.0) == ("phase1 epoch 4/5  step 4/4  5.0 images/s  "
                                              "ETA epoch 0s, phase 20s")


def test_unknown_steps_give_the_count_without_an_eta():
    progress = StepProgress("phase2", epochs=2, steps=None, images=0, interval=10)
    progress.epoch_begin(0, now=0.0)
    assert progress.step_end(7, now=11.0) == "phase2 epoch 1/2  step 7"


def test_durations_are_short():
    assert [step_progress.duration(s) for s in (4.4, 65, 3720, -1)] == [
        "4s", "1m05s", "1h02m", "0s"]


def test_the_keras_callback_logs_within_an_epoch(caplog):
    """The real tf_keras callback in a real fit: with interval 0 every step logs a line."""
    import numpy as np
    import tf_keras

    from inception_retrain.components.trainer.train import EpochProgress

    model = tf_keras.Sequential([tf_keras.layers.Dense(2, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((40, 3), np.float32), np.zeros((40, 2), np.float32)
    with caplog.at_level(logging.INFO):
        model.fit(x, y, batch_size=16, epochs=2, verbose=0,
                  callbacks=[EpochProgress("phase1", 2, steps=3, images=40, interval=0)])
    steps = [r.getMessage().split("  ")[:2] for r in caplog.records
             if " step " in r.getMessage()]
    assert steps == [
        ["phase1 epoch 1/2", "step 1/3"], ["phase1 epoch 1/2", "step 2/3"],
        ["phase1 epoch 1/2", "step 3/3"], ["phase1 epoch 2/2", "step 1/3"],
        ["phase1 epoch 2/2", "step 2/3"], ["phase1 epoch 2/2", "step 3/3"]]
