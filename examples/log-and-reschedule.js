// An example handler: logs each message and reschedules it to run again.
// CommonJS; an ES module exporting `handle` (or a default function) works the same.
//
// The body is JSON by convention: { "every": "30s" } reschedules every 30 seconds;
// without it the message comes back in 10 seconds. { "times": N } stops after N runs.

/** @type {import('@orbit-worker/orbit').Handler} */
exports.handle = async (message, ctx) => {
  let body = {};
  try {
    body = message.json();
  } catch {
    // Not JSON: treat as an empty body.
  }
  ctx.logger.info({ runs: message.runs, attempt: message.attempt, early: message.early, body }, 'example handler ran');
  if (typeof body.times === 'number' && message.runs + 1 >= body.times) return { done: true };
  return { reschedule: { delay: body.every ?? '10s' } };
};
