-- The matcher's blocking keys of each customer (see src/matching/blocking.rs): every index key
-- the batch matcher files a customer under or looks one up by, tagged by index and mixed with
-- the tenant (a posting list holds one tenant's customers). One Digit customer is decided
-- from the customers sharing a key with it, through the GIN indexes, never the whole mirror.
-- Forward only.
--
-- NULL: not computed yet. The background key job (src/service/keys.rs) fills existing rows,
-- found through the partial indexes, as it does when the normalizer version changes.
ALTER TABLE qbo_customers ADD COLUMN match_keys bigint[];
ALTER TABLE digit_customers ADD COLUMN match_keys bigint[];
-- fastupdate off: a decision probes the index once per key, and every probe would scan the
-- whole pending list (up to 4 MB) that fast updates leave until the next vacuum; planners
-- also cost pending pages and then prefer a sequential scan per key.
CREATE INDEX qbo_customers_match_keys_idx ON qbo_customers USING gin (match_keys)
    WITH (fastupdate = off);
CREATE INDEX digit_customers_match_keys_idx ON digit_customers USING gin (match_keys)
    WITH (fastupdate = off);
CREATE INDEX qbo_customers_unkeyed_idx ON qbo_customers (tenant_id) WHERE match_keys IS NULL;
CREATE INDEX digit_customers_unkeyed_idx ON digit_customers (tenant_id) WHERE match_keys IS NULL;
