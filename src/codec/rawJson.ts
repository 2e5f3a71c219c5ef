// A value that is already JSON text (a cached listing): spliced into a reply unparsed, its UTF-8
// bytes made once however many replies carry it. Only the bytes are kept (a cached listing would
// otherwise be held twice, as a string and as a Buffer).
export class RawJson {
  readonly bytes: Buffer;

  constructor(json: string) {
    this.bytes = Buffer.from(json, 'utf8');
  }
}
