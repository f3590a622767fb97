DROP INDEX devices_live_token_hash;
ALTER TABLE devices DROP COLUMN live_token_hash;
