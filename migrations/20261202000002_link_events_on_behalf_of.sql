-- The end user a caller acted for, kept with its audit events (LinkCustomers, UnlinkCustomer),
-- and the tenant's trail read newest first (ListLinkEvents). Forward only.
ALTER TABLE link_events ADD COLUMN on_behalf_of text;
CREATE INDEX link_events_tenant_idx ON link_events (tenant_id, id DESC);
