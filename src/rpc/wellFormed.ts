// Refuses a request holding text that is not well-formed Unicode, before any method sees it
// (docs/rules.md, "Text"). JSON lets a peer write a lone surrogate ("\ud800") that UTF-8 cannot
// carry: the decoder accepts the escape, JSON.parse makes a string of it, and where that string
// is encoded for PostgreSQL each lone surrogate becomes U+FFFD — so "\ud800" and "\udc00", two
// different idempotency keys, were stored as one and collided. One walk of the request,
// strings and keys only; its depth is bounded by the decoder's limits.maxJsonDepth.
import { CarrelError, ErrorCode } from '../errors.js';

/** String.prototype.isWellFormed (Node 20); the project's TypeScript lib predates it. */
interface WellFormedString {
  isWellFormed(): boolean;
}

const wellFormed = (s: string): boolean => (s as unknown as WellFormedString).isWellFormed();

/**
 * The path of the first string or key in `value` that holds a lone surrogate ("args[0].key",
 * "token"), or null when every one is well-formed. Only strings are inspected; numbers,
 * booleans and null are passed over.
 */
export function malformedStringPath(value: unknown): string | null {
  if (typeof value === 'string') return wellFormed(value) ? null : '';
  if (value === null || typeof value !== 'object') return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (isScalar(item)) continue;
      const inner = malformedStringPath(item);
      if (inner !== null) return `[${i}]${inner}`;
    }
    return null;
  }
  // for-in, not Object.keys: no array per object (a PING walks in ~50 ns). A parsed request's
  // objects have only own, data properties ("__proto__" included, as JSON.parse defines it).
  for (const key in value) {
    if (!wellFormed(key)) return `.${printable(key)} (a key)`;
    const item = (value as Record<string, unknown>)[key];
    if (isScalar(item)) continue;
    const inner = malformedStringPath(item);
    if (inner !== null) return `.${key}${inner}`;
  }
  return null;
}

/** Numbers, booleans and null: nothing to check, and the common case, so no call for them. */
function isScalar(value: unknown): boolean {
  return value === null || (typeof value !== 'string' && typeof value !== 'object');
}

/** INVALID_ARGUMENT naming the first malformed string of the request, if there is one. */
export function refuseMalformedStrings(request: Record<string, unknown>): void {
  const at = malformedStringPath(request);
  if (at === null) return;
  const path = at.startsWith('.') ? at.slice(1) : at;
  throw new CarrelError(
    ErrorCode.INVALID_ARGUMENT,
    `${path}: text must be well-formed Unicode (it holds a lone surrogate, such as "\\ud800" without its pair)`,
    { path },
  );
}

/** A malformed key as it may be shown: each lone surrogate as U+FFFD. */
function printable(key: string): string {
  return (key as unknown as { toWellFormed(): string }).toWellFormed();
}
