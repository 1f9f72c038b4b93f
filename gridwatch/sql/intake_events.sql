-- The 'report' event of each case intake_insert.sql just created (one statement for the batch).
-- The actor is the signed-in user's name when there is one (intake sets gridwatch.trail_actor to it
-- first, so case_event's per-row rewrite is skipped and its once-per-statement check confirms it, 0110).
INSERT INTO case_event (case_id, at, actor, action, from_state, to_state, level, note, data)
SELECT i.case_id, i.at, %(actor)s, 'report', NULL, 'reported', i.level, NULL,
       jsonb_build_object('channel', i.channel, 'grade', i.grade, 'possible_duplicate_of', i.dup)
FROM unnest(%(case_id)b::bigint[], %(at)b::timestamptz[], %(level)b::text[], %(channel)b::text[], %(grade)b::text[],
            %(dup)b::bigint[]) AS i(case_id, at, level, channel, grade, dup)
ORDER BY i.case_id
