-- The core schema of qbo-sync. Every table carries tenant_id and every query filters by it.
-- Forward only: never edit this file once landed; add a new migration instead.

-- A tenant's connection to its QuickBooks Online company. Tokens are encrypted by the service
-- (AES-256-GCM, tenant + realm as associated data); the database never sees them in clear.
CREATE TABLE connections (
    tenant_id                 text        PRIMARY KEY CHECK (octet_length(tenant_id) BETWEEN 1 AND 64),
    realm_id                  text        NOT NULL CHECK (octet_length(realm_id) BETWEEN 1 AND 64),
    environment               text        NOT NULL CHECK (environment IN ('sandbox', 'production')),
    state                     text        NOT NULL CHECK (state IN ('connected', 'needs_reauth', 'disconnected')),
    access_token_enc          bytea,
    access_token_expires_at   timestamptz,
    refresh_token_enc         bytea,
    refresh_token_expires_at  timestamptz,
    -- Bumped on every token change, so a replica can tell that another one already refreshed.
    token_generation          bigint      NOT NULL DEFAULT 0,
    last_error                text,
    connected_at              timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now()
);
-- One live tenant per QBO company: two tenants writing into one company would fight over links.
CREATE UNIQUE INDEX connections_live_realm_key ON connections (realm_id) WHERE state <> 'disconnected';

-- Customers as Digit reports them.
CREATE TABLE digit_customers (
    tenant_id        text        NOT NULL,
    id               text        NOT NULL CHECK (octet_length(id) BETWEEN 1 AND 64),
    display_name     text        NOT NULL,
    company_name     text,
    given_name       text,
    family_name      text,
    email            text,
    phone            text,
    active           boolean     NOT NULL DEFAULT true,
    -- Bumped when a push to QBO must start over (e.g. after an unlink), so its requestid changes.
    push_generation  integer     NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

-- The mirror of each tenant's QBO customers, as last read from QBO.
CREATE TABLE qbo_customers (
    tenant_id             text        NOT NULL,
    qbo_id                text        NOT NULL,
    sync_token            text        NOT NULL,
    display_name          text        NOT NULL,
    fully_qualified_name  text,
    parent_qbo_id         text,
    is_job                boolean     NOT NULL DEFAULT false,
    level                 integer     NOT NULL DEFAULT 0,
    active                boolean     NOT NULL DEFAULT true,
    company_name          text,
    given_name            text,
    family_name           text,
    email                 text,
    phone                 text,
    -- Set when QBO reports the customer gone (merged away or not found); the row stays for history.
    missing               boolean     NOT NULL DEFAULT false,
    merged_into_qbo_id    text,
    qbo_last_updated_at   timestamptz,
    -- Matching keys, recomputed whenever the normalizer version changes.
    name_key              text,
    email_key             text,
    normalizer_version    integer     NOT NULL DEFAULT 0,
    mirrored_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, qbo_id)
);
CREATE INDEX qbo_customers_name_key_idx ON qbo_customers (tenant_id, name_key);
CREATE INDEX qbo_customers_email_key_idx ON qbo_customers (tenant_id, email_key) WHERE email_key IS NOT NULL;

-- One link per Digit customer and one per QBO customer, per tenant.
CREATE TABLE links (
    tenant_id           text             NOT NULL,
    digit_customer_id   text             NOT NULL,
    qbo_customer_id     text             NOT NULL,
    method              text             NOT NULL CHECK (method IN ('manual', 'auto_exact', 'auto_normalized',
                                             'auto_email', 'created_in_qbo', 'duplicate_name_recovery', 'merge_repoint')),
    score               double precision NOT NULL DEFAULT 1 CHECK (score BETWEEN 0 AND 1),
    reasons             jsonb            NOT NULL DEFAULT '[]',
    normalizer_version  integer          NOT NULL DEFAULT 0,
    linked_by           text             NOT NULL,
    linked_at           timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT links_digit_key PRIMARY KEY (tenant_id, digit_customer_id),
    CONSTRAINT links_qbo_key UNIQUE (tenant_id, qbo_customer_id),
    CONSTRAINT links_digit_customer_fkey FOREIGN KEY (tenant_id, digit_customer_id)
        REFERENCES digit_customers (tenant_id, id)
);

-- The append-only audit trail of every change to links.
CREATE TABLE link_events (
    id                 bigserial   PRIMARY KEY,
    tenant_id          text        NOT NULL,
    digit_customer_id  text        NOT NULL,
    action             text        NOT NULL CHECK (action IN ('link', 'unlink', 'replace', 'repoint')),
    before             jsonb,
    after              jsonb,
    actor              text        NOT NULL,
    reason             text        NOT NULL DEFAULT '',
    run_id             uuid,
    occurred_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX link_events_customer_idx ON link_events (tenant_id, digit_customer_id, id);

CREATE FUNCTION link_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'link_events is append-only';
END;
$$;
CREATE TRIGGER link_events_append_only BEFORE UPDATE OR DELETE ON link_events
    FOR EACH ROW EXECUTE FUNCTION link_events_refuse_change();

-- Digit customers waiting for a person to choose among candidates.
CREATE TABLE review_items (
    id                 uuid        PRIMARY KEY,
    tenant_id          text        NOT NULL,
    digit_customer_id  text        NOT NULL,
    state              text        NOT NULL CHECK (state IN ('open', 'resolved', 'superseded')),
    reason             text        NOT NULL,
    candidates         jsonb       NOT NULL DEFAULT '[]',
    run_id             uuid,
    decision           text        CHECK (decision IN ('accept_candidate', 'reject_all', 'create_new')),
    resolved_by        text,
    resolution_note    text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    resolved_at        timestamptz,
    FOREIGN KEY (tenant_id, digit_customer_id) REFERENCES digit_customers (tenant_id, id)
);
CREATE UNIQUE INDEX review_items_open_customer_key ON review_items (tenant_id, digit_customer_id) WHERE state = 'open';
CREATE INDEX review_items_open_idx ON review_items (tenant_id, created_at, id) WHERE state = 'open';

-- Pairs a person declared "not the same": never proposed again.
CREATE TABLE rejected_pairs (
    tenant_id          text        NOT NULL,
    digit_customer_id  text        NOT NULL,
    qbo_customer_id    text        NOT NULL,
    rejected_by        text        NOT NULL,
    reason             text        NOT NULL DEFAULT '',
    rejected_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, digit_customer_id, qbo_customer_id)
);

-- Sync runs; at most one queued or running per tenant.
CREATE TABLE sync_runs (
    id                          uuid        PRIMARY KEY,
    tenant_id                   text        NOT NULL,
    mode                        text        NOT NULL CHECK (mode IN ('full', 'incremental')),
    state                       text        NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    dry_run                     boolean     NOT NULL,
    link_only                   boolean     NOT NULL,
    idempotency_key             text,
    requested_by                text        NOT NULL,
    qbo_customers_read          bigint      NOT NULL DEFAULT 0,
    digit_customers_considered  bigint      NOT NULL DEFAULT 0,
    already_linked              bigint      NOT NULL DEFAULT 0,
    auto_linked                 bigint      NOT NULL DEFAULT 0,
    queued_for_review           bigint      NOT NULL DEFAULT 0,
    pushed_to_qbo               bigint      NOT NULL DEFAULT 0,
    conflicts                   bigint      NOT NULL DEFAULT 0,
    errors                      bigint      NOT NULL DEFAULT 0,
    planned_actions             jsonb       NOT NULL DEFAULT '[]',
    error                       text,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    started_at                  timestamptz,
    finished_at                 timestamptz,
    updated_at                  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX sync_runs_active_tenant_key ON sync_runs (tenant_id) WHERE state IN ('queued', 'running');
CREATE UNIQUE INDEX sync_runs_idempotency_key ON sync_runs (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX sync_runs_tenant_idx ON sync_runs (tenant_id, created_at DESC);

-- The durable job queue. Workers claim with FOR UPDATE SKIP LOCKED; a lease (locked_until)
-- lets another replica take over the job of a replica that died.
CREATE TABLE jobs (
    id             uuid        PRIMARY KEY,
    tenant_id      text        NOT NULL,
    kind           text        NOT NULL,
    payload        jsonb       NOT NULL DEFAULT '{}',
    state          text        NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    -- Lower runs first: 0 interactive (preflight repair, single push), 10 background.
    priority       smallint    NOT NULL DEFAULT 10,
    run_at         timestamptz NOT NULL DEFAULT now(),
    attempts       integer     NOT NULL DEFAULT 0,
    max_attempts   integer     NOT NULL DEFAULT 8,
    locked_by      text,
    locked_until   timestamptz,
    last_error     text,
    -- Jobs with the same key are one job while queued or running (e.g. one push per customer).
    dedupe_key     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_claim_idx ON jobs (priority, run_at) WHERE state = 'queued';
CREATE INDEX jobs_lease_idx ON jobs (locked_until) WHERE state = 'running';
CREATE UNIQUE INDEX jobs_live_dedupe_key ON jobs (tenant_id, dedupe_key) WHERE dedupe_key IS NOT NULL AND state IN ('queued', 'running');
