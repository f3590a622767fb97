-- Issue 12: attack telemetry per device, shown as a warning in the console. refused_acks: acks the
-- device refused (forged or stale `system/{device}/ack`), summed over its restarts from the count
-- its statuses report (refused_acks_reported: the last count reported, since the device started);
-- invalid_messages: messages on its topics the ingest refused; refused_live_logins: live-push
-- logins naming it that were refused (RTSP server and MediaMTX hook); last_attack_at: when any of
-- them last grew (epoch ms).
ALTER TABLE devices ADD COLUMN refused_acks BIGINT NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN refused_acks_reported BIGINT NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN invalid_messages BIGINT NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN refused_live_logins BIGINT NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN last_attack_at BIGINT;
