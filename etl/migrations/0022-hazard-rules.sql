-- Hazards: the grade a reporter gave (base_grade), the grade spatial rules raise it to, and why;
-- the rules themselves; an append-only trail of hazard actions (rectify, close out 销号, re-inspect).
ALTER TABLE hazard ADD COLUMN IF NOT EXISTS base_grade text CHECK (base_grade IN ('red', 'orange', 'yellow'));
UPDATE hazard SET base_grade = grade WHERE base_grade IS NULL;
ALTER TABLE hazard ALTER COLUMN base_grade SET DEFAULT 'yellow';
ALTER TABLE hazard ALTER COLUMN base_grade SET NOT NULL;
ALTER TABLE hazard ADD COLUMN IF NOT EXISTS grade_reasons jsonb NOT NULL DEFAULT '[]'::jsonb;
ALTER TABLE hazard ADD COLUMN IF NOT EXISTS rectified_at timestamptz;

-- A hazard of `kind` within `within_m` metres of an open hazard of one of `near_kinds` is raised to
-- `grade`. The reason texts take {near} (the other feature's title) and {distance} (metres).
CREATE TABLE hazard_rule (
    code        text PRIMARY KEY,
    kind        text NOT NULL,
    near_kinds  text[] NOT NULL,
    within_m    double precision NOT NULL CHECK (within_m >= 0),
    grade       text NOT NULL CHECK (grade IN ('red', 'orange', 'yellow')),
    reason_zh   text NOT NULL,
    reason_en   text NOT NULL
);
INSERT INTO hazard_rule VALUES
    ('power_line_near_building', 'power_line', ARRAY['building', 'livestock_shed', 'dilapidated_house'], 10, 'red',
     '电力线距「{near}」仅 {distance} 米（10 米内有建筑或畜棚，升为红色）',
     'power line {distance} m from "{near}" (a building or livestock shed within 10 m raises it to red)'),
    ('gas_near_fire', 'gas', ARRAY['fire'], 50, 'red',
     '燃气隐患距火灾隐患「{near}」{distance} 米（50 米内，升为红色）',
     'gas hazard {distance} m from fire hazard "{near}" (within 50 m raises it to red)'),
    ('gas_near_building', 'gas', ARRAY['building', 'dilapidated_house'], 5, 'orange',
     '燃气隐患距「{near}」{distance} 米（5 米内有建筑，升为橙色）',
     'gas hazard {distance} m from "{near}" (a building within 5 m raises it to orange)'),
    ('dilapidated_in_hazard_zone', 'dilapidated_house', ARRAY['flood', 'geological'], 0, 'red',
     '危房位于「{near}」范围内（洪涝或地质灾害区内的危房升为红色）',
     'dilapidated house inside "{near}" (inside a flood or geological hazard zone raises it to red)'),
    ('shed_in_hazard_zone', 'livestock_shed', ARRAY['flood', 'geological'], 0, 'orange',
     '畜棚位于「{near}」范围内（升为橙色）',
     'livestock shed inside "{near}" (inside a flood or geological hazard zone raises it to orange)');

CREATE TABLE hazard_event (
    id          bigserial PRIMARY KEY,
    hazard_id   bigint NOT NULL REFERENCES hazard (id),
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    from_state  text,
    to_state    text NOT NULL,
    note        text,
    data        jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX hazard_event_hazard ON hazard_event (hazard_id, at);

CREATE FUNCTION hazard_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'hazard_event is append-only: % is not allowed', TG_OP
        USING HINT = 'Record a new event instead of changing an old one.';
END $$;
CREATE TRIGGER hazard_event_append_only BEFORE UPDATE OR DELETE ON hazard_event
    FOR EACH ROW EXECUTE FUNCTION hazard_event_append_only();
