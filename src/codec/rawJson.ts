// A value that is already JSON text (a cached listing): spliced into a reply unparsed, and
// encoded to UTF-8 once however many replies carry it.
export class RawJson {
  private encoded: Buffer | undefined;

  constructor(readonly json: string) {}

  get bytes(): Buffer {
    return (this.encoded ??= Buffer.from(this.json, 'utf8'));
  }
}
