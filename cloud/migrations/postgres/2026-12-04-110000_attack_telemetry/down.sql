ALTER TABLE devices DROP COLUMN last_attack_at;
ALTER TABLE devices DROP COLUMN refused_live_logins;
ALTER TABLE devices DROP COLUMN invalid_messages;
ALTER TABLE devices DROP COLUMN refused_acks_reported;
ALTER TABLE devices DROP COLUMN refused_acks;
