"""Progress inside a training epoch: at 100k tiles a phase-2 epoch takes minutes, so a line every
`interval` seconds says how far the epoch is (steps, images/s) and when the epoch and the phase
should end. Plain Python, time passed in: the trainer's Keras callback feeds it the clock."""
from typing import Optional

INTERVAL_SECONDS = 15.0  # between two lines within an epoch (the issue asks for 10-30 s)


def duration(seconds: float) -> str:
    """12s, 4m05s, 1h02m: short enough for a progress line."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class StepProgress:
    """Decides when a within-epoch line is due and what it says.

    steps: batches per epoch (None when unknown: no ETA then); images: examples per epoch (the
    last batch may be short); epochs: the phase's epochs. Rates are measured: the epoch's own
    for its ETA, the phase's (validation included) for the phase's ETA.
    """

    def __init__(self, phase: str, epochs: int, steps: Optional[int], images: int,
                 interval: float = INTERVAL_SECONDS):
        self._phase, self._epochs, self._steps, self._images = phase, epochs, steps, images
        self._interval = interval
        self._phase_start: Optional[float] = None
        self._epoch_start = self._last = 0.0
        self._epoch = self._first_epoch = 0

    def epoch_begin(self, epoch: int, now: float) -> None:
        """epoch: Keras' 0-based index (a resumed phase starts past 0)."""
        if self._phase_start is None:
            self._phase_start, self._first_epoch = now, epoch
        self._epoch, self._epoch_start, self._last = epoch, now, now

    def step_end(self, steps_done: int, now: float) -> Optional[str]:
        """The line to log after steps_done batches of the current epoch, or None when the
        previous line (or the epoch's start) is less than interval seconds ago."""
        if self._phase_start is None or now - self._last < self._interval:
            return None
        self._last = now
        elapsed = now - self._epoch_start
        per_step = self._images / self._steps if self._steps else None
        images = (min(self._images, round(steps_done * per_step)) if per_step else None)
        of = f"/{self._steps}" if self._steps else ""
        line = f"{self._phase} epoch {self._epoch + 1}/{self._epochs}  step {steps_done}{of}"
        if images is not None and elapsed > 0:
            line += f"  {images / elapsed:.1f} images/s"
        if not self._steps or steps_done <= 0:
            return line
        epoch_left = elapsed / steps_done * max(0, self._steps - steps_done)
        # The phase's pace so far (earlier epochs' validation included) for the epochs to come.
        done_epochs = self._epoch - self._first_epoch
        phase_elapsed = now - self._phase_start
        per_epoch = (phase_elapsed - elapsed) / done_epochs if done_epochs else (
            elapsed / steps_done * self._steps)
        phase_left = epoch_left + per_epoch * max(0, self._epochs - self._epoch - 1)
        return f"{line}  ETA epoch {duration(epoch_left)}, phase {duration(phase_left)}"
