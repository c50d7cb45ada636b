-- Call records for the call-log, dialer and voice-calls specs (PostgreSQL).
ALTER TABLE calls ADD COLUMN external_call_id TEXT;
ALTER TABLE calls ADD COLUMN transcription_url TEXT;
ALTER TABLE calls ADD COLUMN recording_path TEXT;
ALTER TABLE calls ADD COLUMN recording_format TEXT;
ALTER TABLE calls ADD COLUMN recording_channels BIGINT;
ALTER TABLE calls ADD COLUMN recording_sample_rate BIGINT;
ALTER TABLE calls ADD COLUMN recording_bit_rate BIGINT;
ALTER TABLE calls ADD COLUMN recording_size BIGINT;
ALTER TABLE calls ADD COLUMN recording_uploaded_at TIMESTAMPTZ;
CREATE INDEX calls_tenant_start ON calls (tenant_id, start_time);
CREATE INDEX calls_tenant_status ON calls (tenant_id, status, start_time);
CREATE INDEX calls_tenant_customer ON calls (tenant_id, customer_id);
CREATE INDEX audit_log_entity ON audit_log (tenant_id, entity, entity_id, created_at);
