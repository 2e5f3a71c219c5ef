// The one error class every layer throws. Its codes are the wire's closed set (src/wire/errors.ts,
// docs/protocol.md "Error codes"): the RPC dispatcher turns a CarrelError into a reply, anything
// else becomes INTERNAL with a correlation id and its detail goes to the log, never to the peer.
import { ErrorCode, type WireError } from './wire/errors.js';

export { ErrorCode, type WireError };

export class CarrelError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    // An answer to the peer, not a fault: capturing the stack was 7% of the server's CPU when a
    // script's pipelined creates were refused by the thousand. Internal errors keep theirs.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
    this.name = 'CarrelError';
    this.code = code;
    this.details = details;
  }

  toWire(): WireError {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}
