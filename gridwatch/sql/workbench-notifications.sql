-- In-app notifications of one user over the cases of their queue (ids given): a new case in the
-- queue, a deadline within two hours, a returned case, an escalation, a hand-down or a result
-- reported up to the user's level, a department convened to a case. Each has a stable key; read marks are rows of
-- notification_read. params: ids (bigint[]), role, department, level, user_id, now, since
WITH q AS (SELECT c.* FROM cases c WHERE c.id = ANY(%(ids)s)),
n AS (
    SELECT 'new:' || q.id AS key, 'new_case' AS kind, q.id AS case_id, q.ref, q.title,
           coalesce(q.dispatched_at, q.reported_at) AS at, NULL::text AS note
      FROM q
     WHERE (q.state = 'reported' OR (%(role)s = 'department' AND q.state = 'dispatched'))
       AND coalesce(q.dispatched_at, q.reported_at) > %(since)s
    UNION ALL
    SELECT 'due:' || q.id || ':' || extract(epoch FROM q.deadline)::bigint, 'deadline_soon', q.id, q.ref, q.title,
           q.deadline - interval '2 hours', NULL
      FROM q
     WHERE case_is_open(q.state) AND q.deadline > %(now)s AND q.deadline <= %(now)s + interval '2 hours'
    UNION ALL
    SELECT 'event:' || e.id,
           CASE e.action WHEN 'return' THEN 'returned' WHEN 'escalate' THEN 'escalated'
                         WHEN 'report_up' THEN 'reported_up' ELSE 'handed_down' END,
           q.id, q.ref, q.title, e.at, e.note
      FROM q JOIN case_event e ON e.case_id = q.id
     WHERE e.at > %(since)s
       AND (e.action = 'return' AND %(role)s = 'operator'
            OR (e.action IN ('escalate', 'hand_down', 'report_up') AND e.data ->> 'to_level' = %(level)s))
    UNION ALL
    SELECT 'convene:' || a.id, 'convened', q.id, q.ref, q.title, a.convened_at, a.part
      FROM q JOIN case_assignment a ON a.case_id = q.id
     WHERE %(role)s = 'department' AND a.department_id = %(department)s AND a.convened_at > %(since)s
)
SELECT n.*, (r.key IS NOT NULL) AS read
  FROM n LEFT JOIN notification_read r ON r.user_id = %(user_id)s AND r.key = n.key
 ORDER BY n.at DESC, n.key
 LIMIT 200
