DROP TABLE users;
DROP TABLE events;
DROP TABLE devices;
