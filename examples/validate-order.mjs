// An ES module handler that imports orbit by its package name, as a handler kept outside
// orbit's own directory does. For `@orbit-worker/orbit` to resolve, the package must be in a
// node_modules directory above this file:
//
//   - beside your handlers: `npm install @orbit-worker/orbit` (or `npm link` / `npm install
//     /path/to/orbit` from a checkout) in the handler's directory or any parent;
//   - in the container image: nothing to do; the image links the package at
//     /node_modules/@orbit-worker/orbit, above every mounted directory (see Dockerfile).
//
// It expects a JSON body like { "id": "o-1", "amount": 12.5 }. A body that can never
// succeed is thrown out as UnrecoverableError: the message goes straight to the dead-letter
// queue with the given code (header x-orbit-error-code), without the retries a plain throw
// gets. orbit recognises the error even when it comes from another copy of the package than
// the daemon's own (a second install beside the handler), so pin whatever version you like.

import { done, UnrecoverableError } from '@orbit-worker/orbit';

/** @type {import('@orbit-worker/orbit').Handler} */
export async function handle(message, ctx) {
  let order;
  try {
    order = message.json();
  } catch (err) {
    throw new UnrecoverableError('body is not JSON', { code: 'ORDER_NOT_JSON', cause: err });
  }
  if (typeof order !== 'object' || order === null || typeof order.id !== 'string') {
    throw new UnrecoverableError('order has no "id"', { code: 'ORDER_INVALID' });
  }
  if (typeof order.amount !== 'number' || !(order.amount > 0)) {
    throw new UnrecoverableError(`order ${order.id}: amount must be a positive number`, { code: 'ORDER_INVALID' });
  }
  ctx.logger.info({ order: order.id, amount: order.amount }, 'order accepted');
  return done();
}
