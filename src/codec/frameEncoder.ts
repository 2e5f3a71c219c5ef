// Encodes one message as one frame (docs/protocol.md, "Framing"). Returns a single Buffer so a
// fan-out can serialise an event once and write the same bytes to every subscriber.

const HEADER_BYTES = 4;

export function encodeFrame(message: object): Buffer {
  return encodeJsonText(JSON.stringify(message));
}

/** One frame as one buffer, or as parts written back to back (a shared body between two). */
export type EncodedFrame = Buffer | readonly Buffer[];

/**
 * Frames prefix + body + suffix where body is JSON already encoded (core's RawJson.bytes), as three
 * parts: the body is shared, not copied, so a cached listing costs every reply only its small
 * head and tail (one writev on the socket).
 */
export function encodeSpliced(prefix: string, body: Buffer, suffix: string): EncodedFrame {
  const p = Buffer.byteLength(prefix, 'utf8');
  const tail = Buffer.from(suffix, 'utf8');
  const head = Buffer.allocUnsafe(HEADER_BYTES + p);
  head.writeUInt32BE(p + body.length + tail.length, 0);
  head.write(prefix, HEADER_BYTES, 'utf8');
  return [head, body, tail];
}

/** Frames JSON text that is already serialised (e.g. a cached listing spliced into a reply). */
export function encodeJsonText(json: string): Buffer {
  const length = Buffer.byteLength(json, 'utf8');
  const frame = Buffer.allocUnsafe(HEADER_BYTES + length);
  frame.writeUInt32BE(length, 0);
  frame.write(json, HEADER_BYTES, 'utf8');
  return frame;
}
