// A result that is already JSON text (core's cached seat listing): the RPC layer splices it into
// a reply unparsed (codec's encodeSpliced), its UTF-8 bytes made once however many replies carry
// it. It lives in core, which makes it, so that core needs nothing of the codec. Only the bytes are kept (a cached listing would
// otherwise be held twice, as a string and as a Buffer).
export class RawJson {
  readonly bytes: Buffer;

  constructor(json: string) {
    this.bytes = Buffer.from(json, 'utf8');
  }
}
