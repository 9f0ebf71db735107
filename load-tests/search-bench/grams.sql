CREATE FUNCTION bg(t text) RETURNS text[] AS $$ SELECT coalesce(array_agg(DISTINCT x ORDER BY x), '{}') FROM (SELECT lower(substr(t,i,2)) x FROM generate_series(1, char_length(t)-1) i) s WHERE x !~ '\s' $$ LANGUAGE sql IMMUTABLE;
DROP INDEX cases_grams;
UPDATE cases SET grams = bg(title || E'\n' || body);
VACUUM FULL cases;
CREATE INDEX cases_grams ON cases USING gin (grams);
ANALYZE cases;
