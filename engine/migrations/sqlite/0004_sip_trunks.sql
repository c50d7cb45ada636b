-- SIP trunks: several per tenant, tried in failover order (priority ascending, then age).
-- password_enc holds the password sealed with the process's secret key
-- ("v1:" + base64(nonce || ciphertext || tag)); the plaintext is never stored.
CREATE TABLE sip_trunks (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    provider TEXT NOT NULL,
    server TEXT NOT NULL,
    port INTEGER NOT NULL,
    transport TEXT NOT NULL,
    username TEXT,
    password_enc TEXT,
    domain TEXT,
    priority INTEGER NOT NULL,
    max_concurrent_calls INTEGER NOT NULL,
    max_calls_per_second REAL NOT NULL,
    register INTEGER NOT NULL,
    enabled INTEGER NOT NULL,
    enable_recording INTEGER NOT NULL,
    recording_path TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX sip_trunks_name ON sip_trunks (tenant_id, name);
CREATE INDEX sip_trunks_order ON sip_trunks (tenant_id, priority, created_at, id);
