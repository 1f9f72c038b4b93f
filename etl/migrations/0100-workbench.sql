-- The workbench (issue 12): convening several departments on one case (一吹哨、部门报到),
-- attachments kept in the database (so a backup holds them), and the read marks of in-app
-- notifications (the notifications themselves are a query over cases and case_event).
--
-- Every table: grants for the app role gridwatch_app, row-level security ENABLED and FORCED like
-- the other case tables (migration 0081): rows follow their case (or hazard), whose own policy
-- applies inside the EXISTS; the maintainer role keeps full access.

-- ---------------------------------------------------------------------------------------------
-- 一吹哨、部门报到: a lead department and co-handlers on one case, each with its part and deadline.
CREATE TABLE case_assignment (
    id             bigserial PRIMARY KEY,
    case_id        bigint NOT NULL REFERENCES cases (id),
    department_id  bigint NOT NULL REFERENCES department (id),
    role           text NOT NULL CHECK (role IN ('lead', 'co')),            -- 牵头 / 协办
    part           text NOT NULL CHECK (length(part) BETWEEN 1 AND 2000),   -- what this department does
    deadline       timestamptz NOT NULL,
    state          text NOT NULL DEFAULT 'convened'
                     CHECK (state IN ('convened', 'reported_in', 'done', 'declined')),  -- 已召集/已报到/已完成/已退回
    note           text,                                                    -- report-in, result or reason
    convened_at    timestamptz NOT NULL DEFAULT now(),
    convened_by    text NOT NULL,
    reported_in_at timestamptz,
    done_at        timestamptz,
    UNIQUE (case_id, department_id)
);
CREATE INDEX case_assignment_department ON case_assignment (department_id) WHERE state IN ('convened', 'reported_in');
CREATE UNIQUE INDEX case_assignment_one_lead ON case_assignment (case_id) WHERE role = 'lead';

-- A convened department sees the case it was called to (the cases table's own department policy
-- only knows the dispatched department). A SECURITY DEFINER function reads the assignments so the
-- cases policy does not recurse through case_assignment's policy (which follows the case).
CREATE FUNCTION gridwatch_convened_case_ids() RETURNS bigint[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT coalesce(array_agg(a.case_id), '{}') FROM case_assignment a
     WHERE a.department_id = gridwatch_department_id()
$$;
CREATE POLICY cases_convened ON cases USING (id = ANY ((SELECT gridwatch_convened_case_ids())::bigint[]));

ALTER TABLE case_assignment ENABLE ROW LEVEL SECURITY;
ALTER TABLE case_assignment FORCE ROW LEVEL SECURITY;
CREATE POLICY case_assignment_case ON case_assignment
    USING (EXISTS (SELECT 1 FROM cases c WHERE c.id = case_assignment.case_id));
CREATE POLICY case_assignment_maintenance ON case_assignment TO gridwatch_maintainer USING (true) WITH CHECK (true);

-- ---------------------------------------------------------------------------------------------
-- Attachments: photos and documents of a case or a hazard, the bytes in PostgreSQL (a dump holds
-- them), one row per distinct content per case/hazard (sha256), a JPEG thumbnail for images.
CREATE TABLE attachment (
    id            bigserial PRIMARY KEY,
    case_id       bigint REFERENCES cases (id),
    hazard_id     bigint REFERENCES hazard (id),
    event_id      bigint REFERENCES case_event (id),      -- the action it came with (feedback, inspection)
    filename      text NOT NULL CHECK (length(filename) BETWEEN 1 AND 200),
    media_type    text NOT NULL,
    size          integer NOT NULL CHECK (size > 0),
    sha256        bytea NOT NULL CHECK (length(sha256) = 32),
    content       bytea NOT NULL,
    thumbnail     bytea,
    width         integer,
    height        integer,
    note          text,
    uploaded_by   text NOT NULL,
    uploaded_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((case_id IS NULL) <> (hazard_id IS NULL))
);
CREATE UNIQUE INDEX attachment_case_content ON attachment (case_id, sha256) WHERE case_id IS NOT NULL;
CREATE UNIQUE INDEX attachment_hazard_content ON attachment (hazard_id, sha256) WHERE hazard_id IS NOT NULL;
ALTER TABLE attachment ALTER COLUMN content SET STORAGE EXTERNAL;   -- photos are compressed already

ALTER TABLE attachment ENABLE ROW LEVEL SECURITY;
ALTER TABLE attachment FORCE ROW LEVEL SECURITY;
CREATE POLICY attachment_parent ON attachment USING (
       (case_id IS NOT NULL AND EXISTS (SELECT 1 FROM cases c WHERE c.id = attachment.case_id))
    OR (hazard_id IS NOT NULL AND EXISTS (SELECT 1 FROM hazard h WHERE h.id = attachment.hazard_id)));
CREATE POLICY attachment_maintenance ON attachment TO gridwatch_maintainer USING (true) WITH CHECK (true);

-- ---------------------------------------------------------------------------------------------
-- Read marks of in-app notifications: one row per (user, notification key) read. A user sees and
-- writes only their own marks.
CREATE TABLE notification_read (
    user_id   bigint NOT NULL,
    key       text NOT NULL CHECK (length(key) BETWEEN 1 AND 100),
    read_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
ALTER TABLE notification_read ENABLE ROW LEVEL SECURITY;
ALTER TABLE notification_read FORCE ROW LEVEL SECURITY;
CREATE POLICY notification_read_own ON notification_read
    USING (user_id = gridwatch_user_id()) WITH CHECK (user_id = gridwatch_user_id());
CREATE POLICY notification_read_maintenance ON notification_read TO gridwatch_maintainer USING (true) WITH CHECK (true);

-- ---------------------------------------------------------------------------------------------
-- Grants: the app role convenes and updates assignments, adds attachments (never changes or
-- deletes one), and keeps its own read marks.
GRANT SELECT, INSERT, UPDATE ON case_assignment TO gridwatch_app;
GRANT SELECT, INSERT ON attachment TO gridwatch_app;
GRANT SELECT, INSERT, DELETE ON notification_read TO gridwatch_app;
GRANT USAGE, SELECT ON SEQUENCE case_assignment_id_seq, attachment_id_seq TO gridwatch_app;
