-- Background work's share of a realm's rate. Interactive calls book start times freely and
-- background calls only a few ahead, so interactive demand at or above QBO's rate would
-- starve background work (a sync run's pushes) for as long as it lasts. `interactive_run`
-- counts the interactive starts booked in a row since the last background one; once it
-- reaches the configured turn, the next background call books too, however far ahead.
-- Forward only.
ALTER TABLE qbo_rate_limits ADD COLUMN interactive_run integer NOT NULL DEFAULT 0;
