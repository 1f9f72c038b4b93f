-- Monthly statistics per region (criminal cases, public-security cases, homicides, petitions),
-- loaded from CSV by `gridwatch etl stats`; year-on-year and month-on-month figures read them.
CREATE TABLE stat_figure (
    region_code  text NOT NULL REFERENCES region (code) ON DELETE CASCADE,
    indicator    text NOT NULL CHECK (indicator IN ('criminal_cases', 'public_security_cases', 'homicides', 'petitions')),
    period       date NOT NULL CHECK (extract(day FROM period) = 1),   -- the month, as its first day
    value        integer NOT NULL CHECK (value >= 0),
    population   integer CHECK (population IS NULL OR population > 0), -- residents, for rates per 10,000
    source       text NOT NULL DEFAULT 'file',
    loaded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (region_code, indicator, period)
);
CREATE INDEX stat_figure_indicator_period ON stat_figure (indicator, period);
