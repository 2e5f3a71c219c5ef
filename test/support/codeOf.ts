// The code a call fails with (a CarrelError's), or "OK": for unit tests of core and auth code.
import { CarrelError } from '../../src/errors.js';

export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof CarrelError) return err.code;
    throw err;
  }
  return 'OK';
}
