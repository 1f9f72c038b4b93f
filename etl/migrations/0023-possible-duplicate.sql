-- Intake only *flags* a possible duplicate (the same category within 50 m in 72 h) in
-- possible_duplicate_of; the case stays live and counts. duplicate_of is set only when an operator
-- merges it (the 'merge' action: → rejected), and then KPIs and alerts leave it out.
ALTER TABLE cases ADD COLUMN IF NOT EXISTS possible_duplicate_of bigint REFERENCES cases (id);
