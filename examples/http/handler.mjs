// An orbit HTTP handler in Node.js, no dependencies (docs/HTTP-HANDLERS.md): the same
// behaviour as examples/http/handler.py, to show the contract is language-neutral.
//
// orbit POSTs one JSON document per message ({ id, lane, body, bodyEncoding, priority, runs,
// attempt, dueAt, early }) and reads the outcome from the response: 200 with {"done": true},
// {"reschedule": {...}} or an empty body; 4xx = never retry (dead-lettered at once); 5xx =
// try again later.
//
// It logs each run and reschedules the message every `every` (default "10s") until it has run
// `times` times (default 3), then finishes it.
//
// Run it (port from the first argument, else $PORT, else 8080; host from $HOST, else 127.0.0.1):
//
//   node examples/http/handler.mjs 8080

import http from 'node:http';

class Rejected extends Error {}

/** The message body: a JSON value, or a Buffer when orbit had to send it base64. */
function decodeBody(doc) {
  return doc.bodyEncoding === 'base64' ? Buffer.from(doc.body, 'base64') : doc.body;
}

/** The work for one message; returns the outcome orbit reads from the response. */
function processMessage(doc) {
  const body = decodeBody(doc);
  if (typeof body !== 'object' || body === null || Array.isArray(body) || Buffer.isBuffer(body)) {
    throw new Rejected('body must be a JSON object');
  }
  const times = body.times ?? 3;
  const every = body.every ?? '10s';
  if (!Number.isInteger(times) || times < 1) throw new Rejected('"times" must be a positive integer');
  if (doc.runs + 1 >= times) return { done: true };
  // Also possible: at (ISO time), priority, lane, and a new body (any JSON value, or a base64
  // string with bodyEncoding: "base64" for bytes).
  return { reschedule: { delay: every } };
}

function reply(res, status, document) {
  const payload = JSON.stringify(document);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
  res.end(payload);
}

const log = (fields) => console.log(JSON.stringify(fields));

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    let doc;
    try {
      doc = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      if (typeof doc.id !== 'string' || !Number.isInteger(doc.runs)) throw new Error('id or runs missing');
    } catch (err) {
      return reply(res, 400, { error: `not an orbit request: ${err.message}` });
    }
    const base = { id: doc.id, runs: doc.runs, attempt: doc.attempt };
    let outcome;
    try {
      outcome = processMessage(doc);
    } catch (err) {
      const rejected = err instanceof Rejected;
      log({ ...base, outcome: rejected ? 'rejected' : 'failed', error: String(err) });
      // 422: never succeeds, dead-letter it. 500: a bug or a flaky dependency, retry with backoff.
      return reply(res, rejected ? 422 : 500, { error: err.message });
    }
    log({ ...base, outcome: outcome.done ? 'done' : 'reschedule' });
    reply(res, 200, outcome);
  });
});

// orbit keeps at most `concurrency` keep-alive connections per lane and closes them itself;
// closing idle ones here (Node's default is after 5 s) only risks a reset as orbit reuses one.
server.keepAliveTimeout = 0;

const port = Number(process.argv[2] ?? process.env.PORT ?? 8080);
const host = process.env.HOST ?? '127.0.0.1';
server.listen(port, host, () => console.log(`listening on http://${host}:${server.address().port}/`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
