DROP TABLE refusals;
DROP TABLE chain_heads;
DROP TABLE telemetry;
DROP TABLE events;
DROP TABLE bridges;
DROP FUNCTION fleet_append_only();
