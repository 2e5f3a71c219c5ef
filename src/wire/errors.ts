// The error vocabulary of every port (docs/protocol.md, "Error codes"): the closed set of codes and
// the error object a peer is sent. The server throws them as CarrelError (src/errors.ts); clients
// read them from replies and error frames. Imports nothing (docs/architecture.md, "Import rules").

export const ErrorCode = {
  BAD_FRAME: 'BAD_FRAME',
  INVALID_REQUEST: 'INVALID_REQUEST',
  UNKNOWN_METHOD: 'UNKNOWN_METHOD',
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  PERMISSION_DENIED: 'PERMISSION_DENIED',
  NOT_FOUND: 'NOT_FOUND',
  CONFLICT: 'CONFLICT',
  FAILED_PRECONDITION: 'FAILED_PRECONDITION',
  RESOURCE_EXHAUSTED: 'RESOURCE_EXHAUSTED',
  UNAVAILABLE: 'UNAVAILABLE',
  DEADLINE_EXCEEDED: 'DEADLINE_EXCEEDED',
  INTERNAL: 'INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * The one code outside the closed set: a subscriber cut off for falling behind (docs/protocol.md,
 * "Slow consumers"). It is never a reply to a request, so it is not an ErrorCode.
 */
export const SLOW_CONSUMER = 'SLOW_CONSUMER';

/** Any code an error frame may carry. */
export type FrameErrorCode = ErrorCode | typeof SLOW_CONSUMER;

/** An error as it travels: `error` of an RPC reply; `code`, `message` and the details' fields of an error frame. */
export interface WireError<C extends string = ErrorCode> {
  code: C;
  message: string;
  /** For programs; each field is named where the error is described in docs/protocol.md. */
  details?: Record<string, unknown>;
}
