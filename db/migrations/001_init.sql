-- carrel schema, part 1: the reservation core. PostgreSQL is the truth (docs/architecture.md,
-- "Invariants and where they are enforced").
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE branches (
  id              serial PRIMARY KEY,
  name            text NOT NULL UNIQUE,
  timezone        text NOT NULL,
  -- Opening hours per local weekday: {"mon": {"open": "08:00", "close": "22:00"}, ...};
  -- a missing day is closed, "00:00"-"24:00" is around the clock.
  hours           jsonb NOT NULL,
  -- Cleaning buffer after each booking before the next one may start.
  padding_minutes integer NOT NULL DEFAULT 0 CHECK (padding_minutes BETWEEN 0 AND 240),
  created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE seats (
  id          serial PRIMARY KEY,
  branch_id   integer NOT NULL REFERENCES branches(id),
  area        text NOT NULL,
  label       text NOT NULL,
  has_power   boolean NOT NULL DEFAULT false,
  has_monitor boolean NOT NULL DEFAULT false,
  status      text NOT NULL DEFAULT 'IN_SERVICE' CHECK (status IN ('IN_SERVICE', 'OUT_OF_SERVICE')),
  UNIQUE (branch_id, label)
);
CREATE INDEX seats_branch_area ON seats (branch_id, area);

CREATE TABLE users (
  id            serial PRIMARY KEY,
  student_id    text NOT NULL UNIQUE,
  name          text NOT NULL,
  password_hash text NOT NULL,
  role          text NOT NULL DEFAULT 'student' CHECK (role IN ('student', 'admin')),
  created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE waitlist (
  id          bigserial PRIMARY KEY,
  user_id     integer NOT NULL REFERENCES users(id),
  -- Exactly one of seat_id (a seat) or branch_id (any seat of a branch).
  seat_id     integer REFERENCES seats(id),
  branch_id   integer REFERENCES branches(id),
  during      tstzrange NOT NULL CHECK (NOT isempty(during)),
  status      text NOT NULL DEFAULT 'WAITING' CHECK (status IN ('WAITING', 'OFFERED', 'CLAIMED', 'LEFT', 'EXPIRED')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CHECK ((seat_id IS NULL) <> (branch_id IS NULL))
);
CREATE INDEX waitlist_waiting ON waitlist (created_at, id) WHERE status = 'WAITING';
CREATE INDEX waitlist_user ON waitlist (user_id, status);

CREATE TABLE reservations (
  id              bigserial PRIMARY KEY,
  seat_id         integer NOT NULL REFERENCES seats(id),
  user_id         integer NOT NULL REFERENCES users(id),
  -- Half-open [start, end): back-to-back bookings do not collide.
  during          tstzrange NOT NULL CHECK (NOT isempty(during) AND lower_inc(during) AND NOT upper_inc(during)),
  status          text NOT NULL CHECK (status IN ('CONFIRMED', 'CHECKED_IN', 'COMPLETED', 'CANCELLED', 'NO_SHOW', 'OFFERED')),
  -- What the booking blocks: during plus the branch's cleaning buffer (padding_minutes) at
  -- booking time. Equal to during when there is no buffer. Written with during, never alone.
  hold            tstzrange NOT NULL CHECK (lower(hold) = lower(during) AND upper(hold) >= upper(during)),
  idempotency_key text,
  waitlist_id     bigint REFERENCES waitlist(id),
  offer_expires_at timestamptz,
  checked_in_at   timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  -- No double booking, ever: the database refuses overlapping active holds (docs/architecture.md,
  -- "Invariants and where they are enforced").
  CONSTRAINT reservations_no_overlap EXCLUDE USING gist (seat_id WITH =, hold WITH &&)
    WHERE (status IN ('CONFIRMED', 'CHECKED_IN', 'OFFERED'))
);
CREATE UNIQUE INDEX reservations_idempotency ON reservations (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX reservations_user_start ON reservations (user_id, lower(during));
CREATE INDEX reservations_active_start ON reservations (lower(during)) WHERE status IN ('CONFIRMED', 'OFFERED');
CREATE INDEX reservations_active_end ON reservations (upper(during)) WHERE status = 'CHECKED_IN';

-- Latest sensor state per seat (docs/sensors.md), written in batches by the coalescer.
CREATE TABLE seat_live (
  seat_id     integer PRIMARY KEY REFERENCES seats(id),
  occupied    boolean NOT NULL,
  reading_at  timestamptz NOT NULL,
  sensor_id   text,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Sensor keys are stored as SHA-256 digests; the key itself is shown once, to whoever made it.
CREATE TABLE sensor_keys (
  id          serial PRIMARY KEY,
  name        text NOT NULL UNIQUE,
  key_sha256  text NOT NULL UNIQUE,
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);
