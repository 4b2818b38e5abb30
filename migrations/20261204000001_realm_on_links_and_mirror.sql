-- Links and the mirror name the QBO company (realm) their ids belong to. QBO ids are small
-- integers per company, so after a tenant reconnects to another company an old link would
-- silently point at an unrelated customer of the new one. Forward only.
--
-- Both tables reference the tenant's connection by (tenant_id, realm_id): while any link or
-- mirrored customer of the old company remains, the database itself refuses to move the
-- connection to another realm, and a writer that read from the old company after the move
-- fails instead of stamping old ids onto the new company.

ALTER TABLE connections ADD CONSTRAINT connections_tenant_realm_key UNIQUE (tenant_id, realm_id);

ALTER TABLE qbo_customers ADD COLUMN realm_id text;
UPDATE qbo_customers q SET realm_id = c.realm_id FROM connections c WHERE c.tenant_id = q.tenant_id;
-- The mirror is a cache of QBO: rows of a tenant without a connection (none can be written
-- by the service) are dropped and would be read again by the next sync.
DELETE FROM qbo_customers WHERE realm_id IS NULL;
ALTER TABLE qbo_customers ALTER COLUMN realm_id SET NOT NULL,
    ADD CONSTRAINT qbo_customers_connection_fkey FOREIGN KEY (tenant_id, realm_id)
        REFERENCES connections (tenant_id, realm_id);

-- Links a realm change retired, kept whole for history (their audit events say why).
CREATE TABLE archived_links (
    tenant_id           text             NOT NULL,
    realm_id            text,
    digit_customer_id   text             NOT NULL,
    qbo_customer_id     text             NOT NULL,
    method              text             NOT NULL,
    score               double precision NOT NULL,
    reasons             jsonb            NOT NULL,
    normalizer_version  integer          NOT NULL,
    linked_by           text             NOT NULL,
    linked_at           timestamptz      NOT NULL,
    archived_by         text             NOT NULL,
    archive_reason      text             NOT NULL,
    archived_at         timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX archived_links_customer_idx ON archived_links (tenant_id, digit_customer_id);

-- The audit trail says when a realm change archived a link.
ALTER TABLE link_events DROP CONSTRAINT link_events_action_check,
    ADD CONSTRAINT link_events_action_check
        CHECK (action IN ('link', 'unlink', 'replace', 'repoint', 'archive'));

ALTER TABLE links ADD COLUMN realm_id text;
UPDATE links l SET realm_id = c.realm_id FROM connections c WHERE c.tenant_id = l.tenant_id;
-- No path of the service links a tenant that never connected; should such a link exist, it
-- is archived rather than lost, since no company can be named for it.
INSERT INTO archived_links (tenant_id, realm_id, digit_customer_id, qbo_customer_id, method,
        score, reasons, normalizer_version, linked_by, linked_at, archived_by, archive_reason)
    SELECT tenant_id, NULL, digit_customer_id, qbo_customer_id, method, score, reasons,
           normalizer_version, linked_by, linked_at, 'migration', 'the tenant has no connection'
    FROM links WHERE realm_id IS NULL;
INSERT INTO link_events (tenant_id, digit_customer_id, action, before, after, actor, reason)
    SELECT tenant_id, digit_customer_id, 'archive',
           jsonb_build_object('qbo_customer_id', qbo_customer_id, 'method', method), NULL,
           'migration', 'archived: the tenant has no connection to name the company of the link'
    FROM links WHERE realm_id IS NULL;
DELETE FROM links WHERE realm_id IS NULL;
ALTER TABLE links ALTER COLUMN realm_id SET NOT NULL,
    ADD CONSTRAINT links_connection_fkey FOREIGN KEY (tenant_id, realm_id)
        REFERENCES connections (tenant_id, realm_id);
