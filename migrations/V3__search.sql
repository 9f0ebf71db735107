-- Search (issue 18): an ordered index per low-cardinality filter, for the searches the existing
-- indexes leave to a scan of every case.
--
-- A search is `WHERE <filters> ORDER BY created_at DESC, id DESC LIMIT n`. With a common value
-- (status = 'closed') PostgreSQL walks `cases_created` and stops after n matches, in well under a
-- millisecond. With a value that matches few or no cases (a category or town nobody has, a typo)
-- that walk reads every case before it can answer: measured on 1,000,000 generated cases,
-- `category = 'nosuch'` took 0.70-0.82 s and `town = '不存在镇'` 0.44-1.03 s (a sequential scan and a
-- sort). With these indexes each is one index probe (0.06 ms), and a rare value is read in order
-- from its own index (category = 'medical': 0.18 ms). Each costs about 50 MB per million cases
-- and one more index entry per archived case.
--
-- Not indexed, and why: county, sender's id, caller, agent and resolution time have theirs
-- (V1); text goes through the bigram index; a combination of filters uses one of these and
-- filters the rest (its worst case, a combination matching nothing, is bounded by
-- archive.statement_timeout_ms; see ARCHITECTURE "Search").
CREATE INDEX cases_status_created ON cases (status, created_at DESC, id DESC);
CREATE INDEX cases_service_created ON cases (service, created_at DESC, id DESC);
CREATE INDEX cases_category_created ON cases (category, created_at DESC, id DESC);
CREATE INDEX cases_level_created ON cases (level, created_at DESC, id DESC);
CREATE INDEX cases_town_created ON cases (town, created_at DESC, id DESC) WHERE town IS NOT NULL;
-- A region-limited caller's search is one branch per county (`county = $c AND ...`); with a
-- category, a county whose cases of that category are few or none made its branch read the
-- whole county: the 6-county "category = labour" search took 0.72-1.18 s on the 1,000,000
-- generated cases, 0.4-4.7 ms with this index (load-tests/search-bench).
CREATE INDEX cases_county_category_created ON cases (county, category, created_at DESC, id DESC);
