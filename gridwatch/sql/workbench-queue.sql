-- The caller's work queue: open cases (and closed ones still to be visited) that are theirs to
-- act on, with the stage of the queue each is in and the deadline that matters now.
--   operator:    cases handled at the operator's level in its region (a township centre also
--                holds the village-level cases of its villages: villages have no centre account);
--   department:  cases dispatched to it, and cases it was convened to (一吹哨) and has not finished;
--   grid worker: village-level cases of the worker's grid (tasks handed down to the grid).
-- Row-level security narrows this further to the caller's scope.
-- params: role, code (region code of the account), department (id), now, stage (NULL: all)
WITH mine AS (
    SELECT c.*,
           a.id AS assignment_id, a.role AS assignment_role, a.part AS assignment_part,
           a.deadline AS assignment_deadline, a.state AS assignment_state
      FROM cases c
      LEFT JOIN case_assignment a
             ON a.case_id = c.id AND %(role)s = 'department' AND a.department_id = %(department)s
     WHERE c.state <> 'rejected'
       AND (
            (%(role)s = 'operator' AND (
                  (length(%(code)s) = 4 AND c.prefecture_code = %(code)s AND c.handling_level = 'prefecture')
               OR (length(%(code)s) = 6 AND c.county_code = %(code)s AND c.handling_level = 'county')
               OR (length(%(code)s) = 9 AND c.township_code = %(code)s AND c.handling_level IN ('township', 'village'))))
         OR (%(role)s = 'department' AND (
                  (c.department_id = %(department)s AND c.state IN ('dispatched', 'in_progress', 'feedback'))
               OR (a.id IS NOT NULL AND a.state IN ('convened', 'reported_in') AND case_is_open(c.state))))
         OR (%(role)s = 'grid_worker' AND c.grid_code = %(code)s AND c.handling_level = 'village'
             AND case_is_open(c.state))
       )
       AND (c.state <> 'closed' OR (%(role)s = 'operator' AND c.satisfaction IS NULL
                                    AND c.closed_at > %(now)s - interval '30 days'))
), staged AS (
    SELECT m.*,
           CASE
             WHEN %(role)s = 'department' AND m.department_id IS DISTINCT FROM %(department)s THEN 'convened'
             WHEN m.state = 'reported' THEN 'to_accept'
             WHEN m.state = 'dispatched' AND %(role)s = 'department' THEN 'to_accept'
             WHEN m.state IN ('accepted', 'returned') THEN 'to_dispatch'
             WHEN m.state IN ('dispatched', 'in_progress') THEN 'in_progress'
             WHEN m.state = 'feedback' THEN 'to_verify'
             WHEN m.state = 'parked' THEN 'parked'
             WHEN m.state = 'closed' THEN 'to_visit'
           END AS stage,
           CASE
             WHEN m.assignment_id IS NOT NULL AND m.department_id IS DISTINCT FROM %(department)s THEN m.assignment_deadline
             WHEN m.state = 'reported' THEN coalesce(m.respond_by, m.deadline)
             WHEN case_is_open(m.state) THEN m.deadline
           END AS due
      FROM mine m
)
SELECT s.id, s.ref, s.title, s.category_code, cat.name_zh AS category_zh, cat.name_en AS category_en, s.grade,
       s.state, s.stage, s.handling_level, s.channel, s.department_id, d.name AS department_name, s.due, s.deadline,
       s.respond_by, s.reported_at, s.closed_at, s.grid_code, s.village_code, s.township_code, s.county_code,
       s.address, ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat,
       (s.due IS NOT NULL AND s.due < %(now)s AND case_is_open(s.state)) AS overdue,
       extract(epoch FROM s.due - %(now)s)::bigint AS seconds_left,
       s.possible_duplicate_of, s.returns, s.escalations, s.extensions,
       s.assignment_id, s.assignment_role, s.assignment_part, s.assignment_state,
       (SELECT count(*) FROM attachment at WHERE at.case_id = s.id) AS attachments
  FROM staged s
  JOIN category cat ON cat.code = s.category_code
  LEFT JOIN department d ON d.id = s.department_id
 WHERE %(stage)s::text IS NULL
    OR (%(stage)s = 'overdue' AND s.due IS NOT NULL AND s.due < %(now)s AND case_is_open(s.state))
    OR s.stage = %(stage)s
 ORDER BY (s.due IS NULL), s.due, s.reported_at, s.id
 LIMIT %(limit)s
