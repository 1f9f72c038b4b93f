-- A ledger of data loads: what was loaded from which inputs (checksum + seed), when, and what came
-- out. `gridwatch etl gansu` compares the checksum of its inputs with the last row to skip a load
-- that would change nothing; `gridwatch etl boundaries` records each file it loaded.
CREATE TABLE etl_load (
    name       text PRIMARY KEY,             -- 'gansu', 'boundaries:<file>:<level>'
    checksum   text NOT NULL,                -- SHA-256 of the inputs (and the algorithm version)
    seed       bigint,                       -- seed of the generated partitions, if any
    stats      jsonb NOT NULL DEFAULT '{}',  -- counts per level, unmatched units, repairs …
    seconds    double precision,             -- how long the load took
    loaded_at  timestamptz NOT NULL DEFAULT now()
);
