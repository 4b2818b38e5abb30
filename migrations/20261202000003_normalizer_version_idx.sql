-- Rows whose matching keys an older normalizer computed are found through these indexes and
-- recomputed in the background (see src/service/keys.rs); once none is left the lookup finds
-- nothing at once instead of scanning the tables. Forward only.
CREATE INDEX digit_customers_normalizer_idx ON digit_customers (normalizer_version);
CREATE INDEX qbo_customers_normalizer_idx ON qbo_customers (normalizer_version);
