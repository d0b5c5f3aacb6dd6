"""Posts a run's verdict to a webhook (Slack-compatible: the message has a "text" field) with a
timeout and one retry, and never raises: an alert that cannot be delivered is logged, and the
run's outcome stands."""
import http.client
import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Mapping

TIMEOUT_SECONDS = 10.0
RETRY_PAUSE_SECONDS = 2.0


def message(pipeline: str, run_id: str, verdict: str, report: str) -> dict:
    """The JSON body: Slack shows "text"; the other fields are for any other receiver."""
    return {"text": f"{pipeline} run {run_id}: {verdict}" + (f"\nReport: {report}" if report
                                                            else ""),
            "pipeline": pipeline, "run": run_id, "verdict": verdict, "report": report}


def post(url: str, body: Mapping[str, Any], timeout: float = TIMEOUT_SECONDS,
         pause: float = RETRY_PAUSE_SECONDS, log: Callable[[str], None] = None) -> bool:
    """POSTs body as JSON; a second try after `pause` seconds if the first fails (no answer
    within `timeout`, a refused connection, an HTTP status >= 400). True when one was accepted;
    False (and a log line per failed try) otherwise."""
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    data = json.dumps(body).encode()
    for attempt in (1, 2):
        try:
            request = urllib.request.Request(url, data=data, method="POST",
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read()
            return True
        except (urllib.error.URLError, http.client.HTTPException, OSError,
                ValueError) as err:  # HTTPError, timeouts, a broken answer
            log(f"webhook: try {attempt} of 2 to POST to {url} failed: {err}")
        if attempt == 1:
            time.sleep(pause)
    return False
