-- Per-realm QBO request limits shared by every replica.

-- One GCRA row per (realm, bucket): `tat` is the theoretical arrival time of the next request.
-- A request may start at GREATEST(tat, now()); taking it moves tat on by one emission interval.
-- 'request' paces all calls (500/min), 'batch' paces batch calls (40/min).
CREATE TABLE qbo_rate_limits (
    realm_id  text        NOT NULL CHECK (octet_length(realm_id) BETWEEN 1 AND 64),
    bucket    text        NOT NULL CHECK (bucket IN ('request', 'batch')),
    tat       timestamptz NOT NULL,
    PRIMARY KEY (realm_id, bucket)
);

-- Leased concurrency slots (10 per realm at QBO). A slot whose lease ran out is free again, so
-- a replica that died while holding one cannot block the realm for longer than the lease.
CREATE TABLE qbo_concurrency_slots (
    realm_id      text        NOT NULL CHECK (octet_length(realm_id) BETWEEN 1 AND 64),
    slot          smallint    NOT NULL CHECK (slot >= 0),
    holder        uuid,
    leased_until  timestamptz,
    PRIMARY KEY (realm_id, slot)
);
