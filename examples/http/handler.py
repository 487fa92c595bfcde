#!/usr/bin/env python3
"""An orbit HTTP handler in Python, standard library only (docs/HTTP-HANDLERS.md).

orbit POSTs one JSON document per message:

    {"id": "...", "lane": "http", "body": {...}, "bodyEncoding": "json", "priority": 0,
     "runs": 0, "attempt": 0, "dueAt": "2024-01-01T00:00:00.000Z", "early": false}

and reads the outcome from the response: 200 with {"done": true}, {"reschedule": {...}} or an
empty body; 4xx = the message can never succeed (dead-lettered at once); 5xx = try again later.

This handler does what examples/log-and-reschedule.js does: it logs each run and reschedules
the message every `every` (default "10s") until it has run `times` times (default 3), then
finishes it. So {"every": "1s", "times": 3} runs three times (runs 0, 1, 2), a second apart.

Run it (port from the first argument, else $PORT, else 8080; host from $HOST, else 127.0.0.1):

    python3 examples/http/handler.py 8080
"""

import base64
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Rejected(Exception):
    """A message that can never succeed: answered with 422, so orbit dead-letters it."""


def decode_body(doc):
    """The message body: a JSON value, or bytes when orbit had to send it base64."""
    if doc.get("bodyEncoding") == "base64":
        return base64.b64decode(doc["body"])
    return doc.get("body")


def process(doc):
    """The work for one message; returns the outcome orbit reads from the response."""
    body = decode_body(doc)
    if not isinstance(body, dict):
        raise Rejected("body must be a JSON object")
    times = body.get("times", 3)
    every = body.get("every", "10s")
    if not isinstance(times, int) or times < 1:
        raise Rejected('"times" must be a positive integer')
    if doc["runs"] + 1 >= times:
        return {"done": True}
    # Also possible: "at" (ISO time), "priority", "lane", and a new "body" (any JSON value,
    # or a base64 string with "bodyEncoding": "base64" for bytes).
    return {"reschedule": {"delay": every}}


def log(**fields):
    print(json.dumps(fields), flush=True)


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections open: orbit reuses at most `concurrency` of them per lane,
    # so no connection is set up per message. Every response must then carry Content-Length.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without TCP_NODELAY the second waits for the
    # client's delayed ACK, which costs ~40 ms per message on a kept-alive connection.
    disable_nagle_algorithm = True

    def do_POST(self):
        try:
            length = int(self.headers.get("Content-Length", "0"))
            doc = json.loads(self.rfile.read(length))
            message_id, runs = doc["id"], int(doc["runs"])
        except (ValueError, KeyError, TypeError) as err:
            return self.reply(400, {"error": f"not an orbit request: {err}"})

        base = {"id": message_id, "runs": runs, "attempt": doc.get("attempt")}
        try:
            outcome = process(doc)
        except Rejected as err:
            log(**base, outcome="rejected", error=str(err))
            return self.reply(422, {"error": str(err)})
        except Exception as err:  # a bug or a flaky dependency: let orbit retry with backoff
            log(**base, outcome="failed", error=repr(err))
            return self.reply(500, {"error": repr(err)})
        log(**base, outcome="done" if outcome.get("done") else "reschedule")
        self.reply(200, outcome)

    def reply(self, status, document):
        payload = json.dumps(document).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args):
        pass  # one JSON line per message (above) instead of one access-log line per request


def main():
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8080"))
    host = os.environ.get("HOST", "127.0.0.1")
    # One thread per connection; orbit opens at most the lane's concurrency.
    server = ThreadingHTTPServer((host, port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"listening on http://{host}:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
