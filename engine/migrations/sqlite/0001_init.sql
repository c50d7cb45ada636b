-- Switchboard schema v1 (SQLite). Mirrors postgres/0001_init.sql column for column.
-- Ids are UUIDv7 text; every tenant-owned row carries tenant_id.
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    email TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    first_name TEXT,
    last_name TEXT,
    phone TEXT,
    is_active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_login_at TEXT
);
CREATE UNIQUE INDEX users_email ON users (email);
CREATE INDEX users_tenant ON users (tenant_id);

CREATE TABLE agent_groups (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    description TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX agent_groups_name ON agent_groups (tenant_id, name);

CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    user_id TEXT REFERENCES users(id),
    name TEXT NOT NULL,
    phone TEXT,
    email TEXT,
    endpoint TEXT,
    agent_group_id TEXT REFERENCES agent_groups(id),
    status TEXT NOT NULL,
    max_concurrent_calls INTEGER NOT NULL,
    current_calls INTEGER NOT NULL DEFAULT 0,
    total_calls_handled INTEGER NOT NULL DEFAULT 0,
    total_call_duration_seconds INTEGER NOT NULL DEFAULT 0,
    working_hours TEXT,
    is_active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_active_at TEXT
);
CREATE INDEX agents_tenant ON agents (tenant_id, status);
CREATE INDEX agents_group ON agents (agent_group_id);
CREATE UNIQUE INDEX agents_user ON agents (user_id);

CREATE TABLE campaigns (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    caller_id TEXT NOT NULL,
    status TEXT NOT NULL,
    schedule_start TEXT,
    schedule_end TEXT,
    timezone TEXT NOT NULL,
    calling_hours_start TEXT NOT NULL,
    calling_hours_end TEXT NOT NULL,
    agent_group_id TEXT REFERENCES agent_groups(id),
    max_attempts INTEGER NOT NULL,
    retry_delay_minutes INTEGER NOT NULL,
    retry_on_no_answer INTEGER NOT NULL,
    retry_on_busy INTEGER NOT NULL,
    retry_on_voicemail INTEGER NOT NULL,
    amd_enabled INTEGER NOT NULL,
    voicemail_message_url TEXT,
    record_calls INTEGER NOT NULL,
    dial_mode TEXT NOT NULL,
    dial_ratio REAL NOT NULL,
    max_abandon_rate REAL NOT NULL,
    abandon_window TEXT NOT NULL,
    trunk_ids TEXT NOT NULL,
    total_leads INTEGER NOT NULL DEFAULT 0,
    calls_made INTEGER NOT NULL DEFAULT 0,
    calls_completed INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX campaigns_tenant ON campaigns (tenant_id, status, created_at);

CREATE TABLE leads (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    campaign_id TEXT NOT NULL REFERENCES campaigns(id),
    phone TEXT NOT NULL,
    phone_normalized TEXT NOT NULL,
    first_name TEXT,
    last_name TEXT,
    email TEXT,
    country TEXT,
    timezone TEXT,
    lead_type TEXT,
    priority TEXT NOT NULL,
    priority_rank INTEGER NOT NULL,
    custom_fields TEXT NOT NULL,
    notes TEXT,
    status TEXT NOT NULL,
    call_attempts INTEGER NOT NULL DEFAULT 0,
    last_call_at TEXT,
    next_call_at TEXT,
    do_not_call INTEGER NOT NULL DEFAULT 0,
    last_disposition TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX leads_campaign_phone ON leads (campaign_id, phone_normalized);
CREATE INDEX leads_list ON leads (campaign_id, created_at, id);
CREATE INDEX leads_status ON leads (campaign_id, status, created_at, id);
CREATE INDEX leads_hopper ON leads (campaign_id, status, next_call_at, priority_rank);
CREATE INDEX leads_tenant_phone ON leads (tenant_id, phone_normalized);

CREATE TABLE dnc_numbers (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    phone TEXT NOT NULL,
    reason TEXT,
    created_by TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, phone)
);

CREATE TABLE calls (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    campaign_id TEXT REFERENCES campaigns(id),
    lead_id TEXT REFERENCES leads(id),
    agent_id TEXT REFERENCES agents(id),
    customer_id TEXT,
    call_sid TEXT,
    account_sid TEXT,
    conference_sid TEXT,
    from_number TEXT,
    to_number TEXT,
    caller_name TEXT,
    direction TEXT NOT NULL,
    status TEXT NOT NULL,
    answered_by TEXT,
    start_time TEXT,
    answer_time TEXT,
    end_time TEXT,
    duration INTEGER,
    talk_time INTEGER,
    disposition TEXT,
    outcome TEXT,
    recording_url TEXT,
    recording_sid TEXT,
    recording_duration INTEGER,
    cost REAL,
    quality TEXT,
    transcript TEXT,
    tags TEXT NOT NULL,
    metadata TEXT NOT NULL,
    notes TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT
);
CREATE INDEX calls_tenant_created ON calls (tenant_id, created_at);
CREATE INDEX calls_campaign ON calls (campaign_id, created_at);
CREATE INDEX calls_agent ON calls (agent_id, created_at);
CREATE INDEX calls_lead ON calls (lead_id);
CREATE INDEX calls_sid ON calls (call_sid);

CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    user_id TEXT,
    action TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT,
    details TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, created_at);
