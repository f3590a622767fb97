-- Issue 12: each device's live-push credential, apart from its API token. The live push carries it
-- in RTSP Basic auth (in clear on the wire), so it is one only the RTSP server and the MediaMTX auth
-- hook accept, never the API. Kept as the SHA-256 of the token, as token_hash is; cleared with the
-- others when the device is revoked, replaced by `vigie-cloud device rotate`.
ALTER TABLE devices ADD COLUMN live_token_hash TEXT;
CREATE UNIQUE INDEX devices_live_token_hash ON devices (live_token_hash);
