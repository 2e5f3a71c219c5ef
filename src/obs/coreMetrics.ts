// The request half's metrics that belong to no port: the seats.list cache, the database gate
// and the password lanes (docs/operations.md, "Metrics"). Registered by the composition root.
import type { MetricsRegistry } from './metrics.js';
import type { SeatListing } from '../core/seatListing.js';
import type { DbAdmission } from '../db/admission.js';
import type { PasswordHasher } from '../auth/passwordHasher.js';

export function registerCoreMetrics(
  r: MetricsRegistry,
  { listing, dbAdmission: gate, passwords }: { listing: SeatListing; dbAdmission: DbAdmission; passwords: PasswordHasher },
): void {
  r.gauge('carrel_seat_list_cache_bytes', 'bytes of serialised seats.list answers cached (discovery.seatListCacheMaxBytes)', () => listing.cacheSize().bytes);
  r.gauge('carrel_seat_list_cache_entries', 'seats.list answers cached', () => listing.cacheSize().entries);
  r.gauge('carrel_seat_list_cache_hits_total', 'seats.list answered from the cache', () => listing.stats.hits, 'counter');
  r.gauge('carrel_seat_list_cache_misses_total', 'seats.list read from PostgreSQL', () => listing.stats.misses, 'counter');
  r.gauge('carrel_db_admission_in_use', 'pooled connections held by requests (admission.dbSlots)', () => gate.inUse);
  r.gauge('carrel_db_admission_waiting', 'requests waiting their turn for a database connection, and the clients they belong to', () => {
    const w = gate.waiting();
    return [
      { labels: { of: 'requests' }, value: w.requests },
      { labels: { of: 'clients' }, value: w.clients },
    ];
  });
  r.gauge('carrel_db_admission_shed_total', 'requests refused RESOURCE_EXHAUSTED because their client\'s or the whole database queue was full', () => gate.stats.shed, 'counter');
  r.gauge('carrel_auth_hash_jobs', 'password jobs, running on a worker or queued for one, by lane (login compares, register hashes)', () =>
    Object.entries(passwords.lanes).flatMap(([lane, l]) => [
      { labels: { lane, state: 'running' }, value: l.running },
      { labels: { lane, state: 'queued' }, value: l.queued },
    ]));
  r.gauge('carrel_auth_hash_refused_total', 'logins and registrations refused RESOURCE_EXHAUSTED: their hash lane full, by lane', () =>
    Object.entries(passwords.lanes).map(([lane, l]) => ({ labels: { lane }, value: l.refused })), 'counter');
}
