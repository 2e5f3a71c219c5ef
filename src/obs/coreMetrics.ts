// The request half's metrics that belong to no port: the seats.list cache, the booking queue, the
// database gate and the password lanes (docs/operations.md, "Metrics"). Registered by the
// composition root.
import type { MetricsRegistry } from './metrics.js';
import type { SeatListing } from '../core/seatListing.js';
import type { ReservationService } from '../core/reservations.js';
import type { DbAdmission } from '../db/admission.js';
import type { PasswordHasher } from '../auth/passwordHasher.js';

export function registerCoreMetrics(
  r: MetricsRegistry,
  {
    listing,
    reservations,
    dbAdmission: gate,
    passwords,
  }: { listing: SeatListing; reservations: ReservationService; dbAdmission: DbAdmission; passwords: PasswordHasher },
): void {
  r.gauge('carrel_seat_list_cache_bytes', 'bytes of serialised seats.list answers cached (discovery.seatListCacheMaxBytes)', () => listing.cacheSize().bytes);
  r.gauge('carrel_seat_list_cache_entries', 'seats.list answers cached', () => listing.cacheSize().entries);
  r.gauge('carrel_seat_list_cache_hits_total', 'seats.list answered from the cache', () => listing.stats.hits, 'counter');
  r.gauge('carrel_seat_list_cache_misses_total', 'seats.list read from PostgreSQL', () => listing.stats.misses, 'counter');
  const booking = () => reservations.bookingStats();
  r.gauge('carrel_booking_batches_total', 'booking batches sent to PostgreSQL (carrel_book_batch, one round trip each)', () => booking().batches, 'counter');
  r.gauge('carrel_booking_batched_total', 'bookings sent in batches (divided by the batches: the mean batch size)', () => booking().sent, 'counter');
  r.gauge('carrel_booking_queue', 'bookings waiting for a batch, and held for an opening lottery', () => [
    { labels: { state: 'waiting' }, value: booking().waiting },
    { labels: { state: 'held' }, value: booking().held },
  ]);
  r.gauge('carrel_booking_retried_total', 'bookings sent again because their seat was locked by another transaction', () => booking().busy, 'counter');
  r.gauge('carrel_booking_known_full_total', 'best-available bookings answered noSeatFree from what this instance knew, without the database', () => booking().knownFull, 'counter');
  r.gauge('carrel_booking_in_flight_refused_total', 'bookings refused RESOURCE_EXHAUSTED bookingInFlight: the user had another in flight on another instance', () => booking().inFlightRefusals, 'counter');
  r.gauge('carrel_booking_waited_total', "bookings that waited behind their user's booking in flight on this instance", () => booking().waitedBehind, 'counter');
  r.gauge('carrel_booking_known_own_total', 'bookings refused overlapsOwnBooking from the bookings this instance made lately, without the database', () => booking().knownOwn, 'counter');
  r.gauge('carrel_booking_own_remembered', 'users whose recent bookings this instance remembers (booking.knownFullMaxEntries)', () => booking().ownBookings);
  r.gauge('carrel_booking_searches', 'best-available searches remembered (full, or where their last walk found a seat; booking.knownFullMaxEntries)', () => booking().searches);
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
