"""Quiet by default: the one place the command sets the environment, logging and warnings filters,
before TensorFlow, TFX, TFMA, Beam or kfp is imported, so a command prints only what it means to
(its answer, its own progress and warnings, errors). `--verbose` leaves everything as the
libraries have it; a run's log file (cli.progress) gets every Python log record either way.

What is held back on the console without --verbose:
- TensorFlow's C++ lines (TF_CPP_MIN_LOG_LEVEL=3, read when TensorFlow loads): the oneDNN and
  CUDA notices and the "Unable to register cuFFT/cuDNN/cuBLAS factory" lines XLA logs at import
  on a machine with TensorFlow's CUDA build and no GPU. They bypass Python logging, so they are
  in no log file either; --verbose shows them.
- Python warnings (FutureWarning from google-auth and google-api-core, TFMA's and TensorFlow's
  deprecation notices): routed into logging (py.warnings), then treated as below.
- Log records of other packages below ERROR (Beam's "Using Any for unsupported type" type-hint
  chatter, TFX's and absl's INFO lines); this package's own records stay.
"""
import contextlib
import logging
import os
import warnings
from typing import Iterator, Optional

from inception_retrain.cli.progress import is_project_record

_FORMAT = "%(asctime)s %(levelname)s %(message)s"


class ConsoleFilter(logging.Filter):
    """Passes the records this package's code emits, and any package's ERROR and above."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or is_project_record(record)


@contextlib.contextmanager
def apply(verbose: bool, stream: Optional[object] = None) -> Iterator[None]:
    """Sets up the console for one command: quiet unless verbose. Enter before heavy imports;
    on exit the root logger and Python's warning display are as they were (main() may run
    in-process, several times: tests, a user's script)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(_FORMAT))
    root = logging.getLogger()
    saved = root.handlers[:], root.level, warnings.showwarning
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        handler.addFilter(ConsoleFilter())
        logging.captureWarnings(True)
    try:
        yield
    finally:
        if not verbose:
            logging.captureWarnings(False)
        root.handlers, level, warnings.showwarning = saved
        root.setLevel(level)


def keras_messages_to_log(verbose: bool) -> None:
    """Keras prints some lines on stdout itself ("Downloading data from ..." as it fetches the
    ImageNet weights); without verbose they go to absl logging instead: into the run's log, not
    the console. Imports Keras: call only where TensorFlow loads anyway (the run)."""
    if verbose:
        return
    import keras

    keras.config.disable_interactive_logging()
