-- Agents may log in with a SIP softphone that registers with the engine's registrar: the
-- digest user name (unique across tenants: one registrar realm per engine) and the password
-- sealed with the process's secret key ("v1:" + base64(nonce || ciphertext || tag)).
ALTER TABLE agents ADD COLUMN sip_username TEXT;
ALTER TABLE agents ADD COLUMN sip_password_enc TEXT;
CREATE UNIQUE INDEX agents_sip_username ON agents (sip_username);
-- What the agent hears before a lead is bridged in: off, tone (a zip tone) or name (the
-- lead's name spoken, when a speech synthesizer is installed; else the tone).
ALTER TABLE campaigns ADD COLUMN whisper TEXT NOT NULL DEFAULT 'off';
