"""The exit task's webhook poster against real HTTP servers on loopback: one retry after a
failed try, a timeout on a server that never answers, and never an exception."""
import http.server
import json
import threading

import pytest

from inception_retrain.kubeflow import webhook

HANG_SECONDS = 20


class Server(http.server.ThreadingHTTPServer):
    """Answers POSTs by `behaviour` per try: "fail" (HTTP 500), "hang" (200, but only once the
    test ends or after HANG_SECONDS: a poster without a timeout gets it), "ok" (200); every
    body received, in order."""

    def __init__(self, *behaviour: str):
        self.bodies, self.release = [], threading.Event()
        plan, bodies, release = list(behaviour), self.bodies, self.release

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                action = plan.pop(0) if plan else "ok"
                if action == "hang":
                    release.wait(HANG_SECONDS)
                self.send_response(500 if action == "fail" else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


@pytest.fixture
def serve():
    servers = []

    def start(*behaviour):
        server = Server(*behaviour)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.release.set()
        server.shutdown()
        server.server_close()


BODY = webhook.message("inception-retrain", "run-7", "Failed at DataGate: too few tulips",
                       "gs://b/root/run-7/FinalReport/x/report/report.html")


def test_the_message_is_slack_compatible_and_names_run_verdict_and_report():
    assert BODY["text"] == ("inception-retrain run run-7: Failed at DataGate: too few tulips\n"
                            "Report: gs://b/root/run-7/FinalReport/x/report/report.html")
    assert (BODY["run"], BODY["verdict"]) == ("run-7", "Failed at DataGate: too few tulips")


def test_one_post_when_the_server_accepts(serve):
    server = serve("ok")
    assert webhook.post(server.url, BODY, pause=0) is True
    assert server.bodies == [BODY]


def test_a_failed_try_is_retried_once(serve):
    server, lines = serve("fail", "ok"), []
    assert webhook.post(server.url, BODY, pause=0, log=lines.append) is True
    assert server.bodies == [BODY, BODY]
    assert len(lines) == 1 and "try 1 of 2" in lines[0] and "500" in lines[0], lines


def test_a_server_that_never_answers_times_out_twice_and_nothing_raises(serve):
    server, lines = serve("hang", "hang"), []
    assert webhook.post(server.url, BODY, timeout=0.5, pause=0, log=lines.append) is False
    assert len(server.bodies) == 2  # one retry, no more
    assert len(lines) == 2 and all("timed out" in line for line in lines), lines


def test_an_unreachable_or_malformed_url_is_logged_not_raised(serve):
    server = serve()
    url = server.url
    server.shutdown()
    server.server_close()  # nothing listens there any more
    lines = []
    assert webhook.post(url, BODY, timeout=1, pause=0, log=lines.append) is False
    assert len(lines) == 2
    assert webhook.post("not a url", BODY, pause=0, log=lines.append) is False
