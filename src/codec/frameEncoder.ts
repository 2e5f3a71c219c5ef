// Encodes one message as one frame (DESIGN §1). Returns a single Buffer so a fan-out can
// serialise an event once and write the same bytes to every subscriber.

const HEADER_BYTES = 4;

export function encodeFrame(message: object): Buffer {
  return encodeJsonText(JSON.stringify(message));
}

/** Frames JSON text that is already serialised (e.g. a cached listing spliced into a reply). */
export function encodeJsonText(json: string): Buffer {
  const length = Buffer.byteLength(json, 'utf8');
  const frame = Buffer.allocUnsafe(HEADER_BYTES + length);
  frame.writeUInt32BE(length, 0);
  frame.write(json, HEADER_BYTES, 'utf8');
  return frame;
}
