-- The fleet store: every bridge's chained records, as each bridge's own chain, in one place.
-- A bridge is one laser's session log (one hash chain); its rows are keyed by (bridge, seq).

CREATE TABLE bridges (
    bridge_id     text PRIMARY KEY CHECK (length(bridge_id) BETWEEN 1 AND 200),
    chain         text NOT NULL,   -- hash of the chain's seq 1: which chain this bridge ships
    clinic        text,
    registered_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
    bridge_id  text    NOT NULL REFERENCES bridges,
    seq        bigint  NOT NULL CHECK (seq >= 1),
    session_id text    NOT NULL,
    t_wall     float8  NOT NULL,
    kind       text    NOT NULL,
    payload    text    NOT NULL,  -- the canonical JSON text the hash is over
    prev_hash  text    NOT NULL,
    hash       text    NOT NULL,
    PRIMARY KEY (bridge_id, seq)
);
CREATE INDEX events_by_session ON events (bridge_id, session_id, seq);
CREATE INDEX events_by_kind ON events (kind, bridge_id);

CREATE TABLE telemetry (
    bridge_id text    NOT NULL,
    batch_seq bigint  NOT NULL,  -- the telemetry_batch event that vouches for the row
    idx       integer NOT NULL,
    t_s       float8  NOT NULL,
    channel   integer NOT NULL,
    value     float8  NOT NULL,  -- PostgreSQL keeps NaN as NaN
    PRIMARY KEY (bridge_id, batch_seq, idx)
);

-- Each bridge's newest shipped (seq, hash): where its next shipment must continue, and the
-- chain head anchored off the bridge's machine.
CREATE TABLE chain_heads (
    bridge_id   text PRIMARY KEY REFERENCES bridges,
    seq         bigint NOT NULL,
    hash        text   NOT NULL,
    shipped_at  timestamptz NOT NULL DEFAULT now()
);

-- What was refused on arrival (a gap, a forged link, a log behind the fleet): reported,
-- never merged.
CREATE TABLE refusals (
    id          bigserial PRIMARY KEY,
    bridge_id   text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    seq         bigint,
    reason      text NOT NULL
);

-- Append-only: the records and their telemetry are never updated or deleted.
CREATE FUNCTION fleet_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'fleet store is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END $$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION fleet_append_only();
CREATE TRIGGER telemetry_append_only BEFORE UPDATE OR DELETE ON telemetry
    FOR EACH ROW EXECUTE FUNCTION fleet_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION fleet_append_only();
CREATE TRIGGER telemetry_no_truncate BEFORE TRUNCATE ON telemetry
    FOR EACH STATEMENT EXECUTE FUNCTION fleet_append_only();
