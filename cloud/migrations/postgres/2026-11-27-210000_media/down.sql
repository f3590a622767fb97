DROP TABLE uploads;
DROP TABLE snapshots;
DROP TABLE clip_events;
DROP TABLE clips;
