-- The acked_seq walk of vigie_insert_events, checked: `v_after + 1` cannot overflow. New seqs are
-- at most 2^62 (protocol validation and the store refuse larger ones), but rows stored before that
-- bound (an event or a gap record up to 2^63 - 1) could walk acked_seq to the largest BIGINT, and
-- the next `+ 1` raised "bigint out of range" on every later batch of that device. The function is
-- otherwise the one of the offline_mode migration.
CREATE OR REPLACE FUNCTION vigie_insert_events(
    p_id TEXT[], p_device TEXT[], p_seq BIGINT[], p_sensor TEXT[], p_kind TEXT[],
    p_occurred_at BIGINT[], p_clock_synced BOOLEAN[], p_received_at BIGINT, p_schema_version BIGINT[],
    p_corrected_at BIGINT[],
    OUT stored TEXT[], OUT acked_devices TEXT[], OUT acked_seqs BIGINT[])
LANGUAGE plpgsql AS $$
DECLARE
    v_before BIGINT[];
    v_max BIGINT[];
    v_after BIGINT;
    v_seq BIGINT;
    v_read INT;
    v_gap BOOLEAN;
    v_jump BIGINT;
    v_changed_ids TEXT[] := '{}';
    v_changed_seqs BIGINT[] := '{}';
BEGIN
    WITH up AS (
        INSERT INTO devices AS d (id, max_seq, last_seen, state, created_at)
        SELECT u.device, max(u.seq), p_received_at, 'offline', p_received_at
        FROM unnest(p_device, p_seq) AS u (device, seq)
        GROUP BY u.device
        ORDER BY u.device COLLATE "C"
        ON CONFLICT (id) DO UPDATE
            SET last_seen = excluded.last_seen, max_seq = GREATEST(d.max_seq, excluded.max_seq)
        RETURNING d.id, d.acked_seq, d.max_seq
    )
    SELECT array_agg(up.id ORDER BY up.id), array_agg(up.acked_seq ORDER BY up.id),
           array_agg(up.max_seq ORDER BY up.id)
    INTO acked_devices, v_before, v_max
    FROM up;

    WITH ins AS (
        INSERT INTO events
            (id, device, seq, sensor, kind, occurred_at, clock_synced, received_at, schema_version,
             corrected_at)
        SELECT u.id, u.device, u.seq, u.sensor, u.kind, u.occurred_at, u.clock_synced, p_received_at,
               u.schema_version, u.corrected_at
        FROM unnest(p_id, p_device, p_seq, p_sensor, p_kind, p_occurred_at, p_clock_synced,
                    p_schema_version, p_corrected_at)
             AS u (id, device, seq, sensor, kind, occurred_at, clock_synced, schema_version,
                   corrected_at)
        ON CONFLICT (id) DO NOTHING
        RETURNING events.id, events.device, events.seq
    ),
    contiguous AS (
        -- Per device, the distinct seqs stored just now above acked_seq; the first n of them are
        -- acked_seq + 1 .. acked_seq + n exactly when seq - rank = acked_seq.
        SELECT s.device, count(*) FILTER (WHERE s.seq - s.rank = s.before) AS n
        FROM (
            SELECT t.device, t.seq, b.before,
                   row_number() OVER (PARTITION BY t.device ORDER BY t.seq) AS rank
            FROM (SELECT DISTINCT ins.device, ins.seq FROM ins) AS t
            JOIN unnest(acked_devices, v_before) AS b (device, before) ON b.device = t.device
            WHERE t.seq > b.before
        ) AS s
        GROUP BY s.device
    )
    SELECT (SELECT coalesce(array_agg(ins.id), '{}') FROM ins),
           (SELECT array_agg(b.before + coalesce(c.n, 0) ORDER BY b.ord)
            FROM unnest(acked_devices, v_before) WITH ORDINALITY AS b (device, before, ord)
            LEFT JOIN contiguous AS c ON c.device = b.device)
    INTO stored, acked_seqs;

    FOR i IN 1 .. coalesce(array_length(acked_devices, 1), 0) LOOP
        v_after := acked_seqs[i];
        IF v_after > v_before[i] AND v_after < v_max[i] THEN
            LOOP
                -- Nothing follows the largest BIGINT: stop there rather than overflow below.
                EXIT WHEN v_after = 9223372036854775807;
                v_read := 0;
                v_gap := false;
                FOR v_seq IN
                    SELECT e.seq FROM events AS e
                    WHERE e.device = acked_devices[i] AND e.seq > v_after
                    ORDER BY e.seq LIMIT 512
                LOOP
                    v_read := v_read + 1;
                    IF v_seq = v_after + 1 THEN
                        v_after := v_seq;
                    ELSIF v_seq > v_after THEN
                        v_gap := true;
                        EXIT;
                    END IF;
                END LOOP;
                IF v_gap OR v_read < 512 THEN
                    -- A missing seq the device reported dropped (a gap record) is passed over.
                    SELECT max(g.last_seq) INTO v_jump FROM device_gaps AS g
                    WHERE g.device = acked_devices[i] AND g.first_seq <= v_after + 1
                      AND g.last_seq > v_after;
                    EXIT WHEN v_jump IS NULL;
                    v_after := v_jump;
                END IF;
            END LOOP;
            acked_seqs[i] := v_after;
        END IF;
        IF v_after <> v_before[i] THEN
            v_changed_ids := v_changed_ids || acked_devices[i];
            v_changed_seqs := v_changed_seqs || v_after;
        END IF;
    END LOOP;

    IF cardinality(v_changed_ids) > 0 THEN
        UPDATE devices AS d SET acked_seq = c.acked_seq
        FROM unnest(v_changed_ids, v_changed_seqs) AS c (id, acked_seq)
        WHERE d.id = c.id;
    END IF;
    acked_devices := coalesce(acked_devices, '{}');
    acked_seqs := coalesce(acked_seqs, '{}');
END
$$;
