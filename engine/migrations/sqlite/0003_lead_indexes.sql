-- Lead list and count indexes lead with (tenant_id, campaign_id): every lead query filters on
-- both, so counts and deep offsets are answered from the index without reading rows.
DROP INDEX leads_list;
DROP INDEX leads_status;
CREATE INDEX leads_list ON leads (tenant_id, campaign_id, created_at, id);
CREATE INDEX leads_status ON leads (tenant_id, campaign_id, status, created_at, id);
