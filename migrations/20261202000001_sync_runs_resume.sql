-- Sync runs become resumable and cancellable: each keeps its checkpoint, so a replica that
-- takes over a run (its first replica died) goes on from where the run stood. Forward only.

-- Where the run stands: 'read' (QBO pages into the mirror), 'apply' (links, review items and
-- pushes, Digit customer by Digit customer in id order), 'push' (waiting for its pushes).
ALTER TABLE sync_runs ADD COLUMN phase text NOT NULL DEFAULT 'read'
    CHECK (phase IN ('read', 'apply', 'push'));
-- STARTPOSITION of the next page to read (ORDERBY Id, so positions stay stable).
ALTER TABLE sync_runs ADD COLUMN read_position integer NOT NULL DEFAULT 1;
-- When the read began: mirrored rows not seen since were not in QBO's answer (missing).
ALTER TABLE sync_runs ADD COLUMN read_started_at timestamptz;
-- The last Digit customer id applied; the apply goes on after it.
ALTER TABLE sync_runs ADD COLUMN apply_cursor text NOT NULL DEFAULT '';
-- Set by CancelSyncRun; the run stops at its next page or chunk boundary.
ALTER TABLE sync_runs ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false;
-- Every planned action of a dry run, even when `planned_actions` holds only the first ones.
ALTER TABLE sync_runs ADD COLUMN planned_total bigint NOT NULL DEFAULT 0;
-- What started the run: a caller ('api'), the automatic schedule, or a QBO webhook.
ALTER TABLE sync_runs ADD COLUMN trigger text NOT NULL DEFAULT 'api'
    CHECK (trigger IN ('api', 'schedule', 'webhook'));
-- The job that runs it.
ALTER TABLE sync_runs ADD COLUMN job_id uuid;

-- The run that made a link or opened a review item is kept with it (link_events.run_id and
-- review_items.run_id exist already); a link remembers it through its audit event.
CREATE INDEX link_events_run_idx ON link_events (run_id) WHERE run_id IS NOT NULL;

-- Incremental sync reads QBO's changes (CDC) from the time QBO gave with its last answer.
ALTER TABLE mirror_state ADD COLUMN cdc_watermark timestamptz;

-- When each connected tenant's next automatic sync is due; claimed by one replica at a time.
ALTER TABLE connections ADD COLUMN next_auto_sync_at timestamptz;
