-- The job queue grows into what the worker pool needs: a dead state, parking, fair ordering
-- across tenants, and heartbeats. Forward only.

-- 'failed' never held a row (no worker ran before this migration); 'dead' replaces it: a job
-- that spent its attempts, or failed for good, keeping its last error for an operator.
-- 'parked': the tenant's company is not connected (or needs re-authorisation); nothing is
-- tried against QBO until it is connected again, and then the jobs are queued at once.
ALTER TABLE jobs DROP CONSTRAINT jobs_state_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_state_check
    CHECK (state IN ('queued', 'running', 'succeeded', 'dead', 'cancelled', 'parked'));

-- Start-time fair queuing: a job's place in the queue is max(the queue's head, the tenant's
-- last queued job + a step), so one tenant's backlog interleaves with everyone else's instead
-- of standing in front of it. Claims read jobs in (priority, fair_at) order.
ALTER TABLE jobs ADD COLUMN fair_at timestamptz NOT NULL DEFAULT now();
-- Jobs that call QBO wait (parked) while the tenant is not connected.
ALTER TABLE jobs ADD COLUMN needs_connection boolean NOT NULL DEFAULT true;
ALTER TABLE jobs ADD COLUMN heartbeat_at timestamptz;
ALTER TABLE jobs ADD COLUMN finished_at timestamptz;
-- Times QBO throttled the job and it was rescheduled without spending an attempt.
ALTER TABLE jobs ADD COLUMN throttled integer NOT NULL DEFAULT 0;

DROP INDEX jobs_claim_idx;
CREATE INDEX jobs_claim_idx ON jobs (priority, fair_at, id) WHERE state = 'queued';
-- A tenant's queued jobs: its place in the fair order, and grouping pushes into batches.
CREATE INDEX jobs_tenant_queued_idx ON jobs (tenant_id, priority, fair_at) WHERE state = 'queued';
CREATE INDEX jobs_tenant_parked_idx ON jobs (tenant_id) WHERE state = 'parked';
CREATE INDEX jobs_finished_idx ON jobs (finished_at) WHERE state IN ('succeeded', 'cancelled');

-- One live job per dedupe key now counts parked jobs as live too.
DROP INDEX jobs_live_dedupe_key;
CREATE UNIQUE INDEX jobs_live_dedupe_key ON jobs (tenant_id, dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state IN ('queued', 'running', 'parked');

-- The matcher's name key of each Digit customer, so a push can find the customers that share
-- a name (twins) without loading the tenant.
ALTER TABLE digit_customers ADD COLUMN name_key text;
ALTER TABLE digit_customers ADD COLUMN normalizer_version integer NOT NULL DEFAULT 0;
CREATE INDEX digit_customers_name_key_idx ON digit_customers (tenant_id, name_key);

-- What a review item asks a person to decide: choose among match candidates, reactivate an
-- inactive QBO customer that holds the name, or settle a name QBO refused.
ALTER TABLE review_items ADD COLUMN kind text NOT NULL DEFAULT 'match'
    CHECK (kind IN ('match', 'reactivate', 'name_collision', 'rename_collision'));

-- When each tenant's mirror was last read whole from QBO, and who is reading it now (a lease,
-- so one replica reads while the others wait, and a dead reader's lease runs out).
CREATE TABLE mirror_state (
    tenant_id           text        PRIMARY KEY,
    refreshed_at        timestamptz,
    refreshing_by       text,
    refreshing_until    timestamptz
);

-- The words of each mirrored name (lower case), so a push deciding from the mirror finds the
-- customers sharing a word through an index instead of scanning the tenant's mirror.
ALTER TABLE qbo_customers ADD COLUMN name_words text[] NOT NULL DEFAULT '{}';
CREATE INDEX qbo_customers_name_words_idx ON qbo_customers USING gin (name_words);
