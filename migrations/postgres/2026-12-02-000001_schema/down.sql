DROP TABLE devices;
DROP TABLE throttle_events;
DROP TABLE sessions;
DROP TABLE users;
