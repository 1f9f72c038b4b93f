-- Case categories (disputes 矛盾纠纷 and events in the GB/T 30428 classes) and the grade policy
-- (红/橙/黄 tiered response clocks). Each category names the department kind it goes to by default
-- (department.kind), its time limit from dispatch to close, and its default grade.
ALTER TABLE category ADD COLUMN IF NOT EXISTS sort_key integer;

INSERT INTO category (code, family, name_zh, name_en, department_kind, time_limit_hours, default_grade, sort_key) VALUES
    ('marriage_family',   'dispute', '婚姻家庭',     'Marriage and family',           'justice',      240, 'yellow', 10),
    ('neighbour',         'dispute', '邻里纠纷',     'Neighbour dispute',             'justice',       72, 'yellow', 11),
    ('housing_homestead', 'dispute', '房屋宅基地',   'House and homestead',           'land',         360, 'yellow', 12),
    ('forest_land',       'dispute', '山林土地',     'Forest and farmland',           'land',         360, 'yellow', 13),
    ('project_contract',  'dispute', '工程款与合同', 'Project payments and contracts', 'housing',      360, 'orange', 14),
    ('labour',            'dispute', '劳动争议',     'Labour dispute',                'labour',       240, 'orange', 15),
    ('property_mgmt',     'dispute', '物业纠纷',     'Property management',           'housing',      120, 'yellow', 16),
    ('consumer',          'dispute', '消费纠纷',     'Consumer dispute',              'market',       120, 'yellow', 17),
    ('pollution',         'dispute', '环境污染',     'Environmental pollution',       'environment',  168, 'orange', 18),
    ('land_acquisition',  'dispute', '征地拆迁',     'Land requisition and demolition', 'land',       360, 'orange', 19),
    ('damage_compensation','dispute','损害赔偿',     'Damage compensation',           'justice',      240, 'yellow', 20),
    ('traffic_accident',  'dispute', '交通事故纠纷', 'Traffic accident dispute',      'police',       168, 'yellow', 21),
    ('other_dispute',     'dispute', '其他纠纷',     'Other dispute',                 'justice',      240, 'yellow', 22),
    ('city_appearance',   'event',   '市容环境',     'City appearance and sanitation', 'urban',        48, 'yellow', 30),
    ('advertising',       'event',   '宣传广告',     'Advertising and signs',         'urban',         72, 'yellow', 31),
    ('construction',      'event',   '施工管理',     'Construction management',       'housing',       72, 'yellow', 32),
    ('street_order',      'event',   '街面秩序',     'Street order',                  'urban',         24, 'yellow', 33),
    ('emergency',         'event',   '突发事件',     'Emergency',                     'emergency',      4, 'red',    34),
    ('other_event',       'event',   '其他事件',     'Other event',                   'township_gov',  72, 'yellow', 35)
ON CONFLICT (code) DO NOTHING;

-- The tiered response clocks. respond_by at intake: red → reported_at + respond_hours (at once);
-- orange → the end of the reporting day in China time (same day); yellow → reported_at +
-- respond_hours, handled where it happened (resolved locally). start_level is the handling level
-- a case of that grade starts at.
CREATE TABLE grade_policy (
    grade          text PRIMARY KEY CHECK (grade IN ('red', 'orange', 'yellow')),
    rank           smallint NOT NULL UNIQUE,
    name_zh        text NOT NULL,
    name_en        text NOT NULL,
    start_level    text NOT NULL CHECK (start_level IN ('village', 'township', 'county', 'prefecture', 'province')),
    respond_hours  integer,            -- NULL: same day (end of the local day)
    note_zh        text NOT NULL,
    note_en        text NOT NULL
);
INSERT INTO grade_policy VALUES
    ('red',    3, '红色', 'red',    'county',   1,    '立即响应，县级综治中心直接受理',   'respond at once; the county centre takes it'),
    ('orange', 2, '橙色', 'orange', 'township', NULL, '当日响应，乡镇（街道）综治中心受理', 'respond the same day; the township centre takes it'),
    ('yellow', 1, '黄色', 'yellow', 'village',  24,   '就地化解，村（社区）网格处置',       'resolved locally by the village and its grids');

-- Intake fields kept with each case.
ALTER TABLE cases ADD COLUMN IF NOT EXISTS respond_by timestamptz;
ALTER TABLE cases ADD COLUMN IF NOT EXISTS coord_system text NOT NULL DEFAULT 'wgs84' CHECK (coord_system IN ('wgs84', 'gcj02', 'cgcs2000'));
ALTER TABLE cases ADD COLUMN IF NOT EXISTS address text;

-- A human reference: GW + reporting day (China time) + id.
CREATE FUNCTION cases_ref() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.ref IS NULL THEN
        NEW.ref := 'GW' || to_char(NEW.reported_at AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD') || '-' || NEW.id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER cases_ref BEFORE INSERT ON cases FOR EACH ROW EXECUTE FUNCTION cases_ref();
