#!/bin/bash
# Runs each search statement (as src/archive/search.rs builds it, values inlined) 5 times; prints the best and worst execution time.
P="psql -h /tmp/pgsearch -p 25432 -U postgres -d s -qAt"
C="id, county, status, source, external_id, sender, service, category, level, town, agent, created_at, resolved_at, title"
O="ORDER BY created_at DESC, id DESC LIMIT 21"
run() { # name, sql
  local times=()
  for i in 1 2 3 4 5; do
    t=$($P -c "EXPLAIN (ANALYZE, FORMAT JSON) $2" | python3 -c "import json,sys;print(json.load(sys.stdin)[0]['Execution Time'])")
    times+=($t)
  done
  plan=$($P -c "EXPLAIN $2" | head -3 | tr '\n' ' ' | cut -c1-150)
  printf "%-28s %s | %s\n" "$1" "$(printf '%s\n' "${times[@]}" | sort -n | sed -n '1p;5p' | tr '\n' ' ')" "$plan"
}
br() { echo "(SELECT $C FROM cases WHERE county = '$1' $2 $O)"; }
multi() { local w="$1"; local s=""; for c in 320831 320812 320826 320830 320882 320883; do [ -n "$s" ] && s="$s UNION ALL "; s="$s$(br $c "$w")"; done; echo "SELECT $C FROM ($s) AS found $O"; }
run all "SELECT $C FROM cases $O"
run status_closed "SELECT $C FROM cases WHERE status='closed' $O"
run service_triage "SELECT $C FROM cases WHERE service='triage' $O"
run category_medical "SELECT $C FROM cases WHERE category='medical' $O"
run level_orange "SELECT $C FROM cases WHERE level='orange' $O"
run rare_combo "SELECT $C FROM cases WHERE category='medical' AND level='orange' AND status='returned' $O"
run none_combo "SELECT $C FROM cases WHERE service='triage' AND source='12348' AND status='withdrawn' $O"
run county1 "SELECT $C FROM cases WHERE county='320831' AND service='mediation' $O"
run county1_page_deep "SELECT $C FROM cases WHERE county='320831' AND (created_at, id) < ('2025-01-01', '') $O"
run region6 "$(multi "AND category='labour'")"
run region6_all "$(multi "")"
run phone "SELECT $C FROM cases WHERE caller_key=md5('k5') $O"
run external "SELECT $C FROM cases WHERE source='12345' AND external_id='E-500000' $O"
run agent "SELECT $C FROM cases WHERE agent='agent-7' $O"
run town "SELECT $C FROM cases WHERE town='镇7' $O"
run resolved_month "SELECT $C FROM cases WHERE resolved_at >= '2025-03-01' AND resolved_at < '2025-04-01' $O"
run created_old "SELECT $C FROM cases WHERE created_at < '2024-03-01' $O"
run text_common "SELECT $C FROM cases WHERE grams @> ARRAY['工资']::text[] AND (strpos(title,'工资')>0 OR strpos(body,'工资')>0) $O"
run text_medium "SELECT $C FROM cases WHERE grams @> ARRAY['抛物','空抛','高空']::text[] AND (strpos(title,'高空抛物')>0 OR strpos(body,'高空抛物')>0) $O"
run text_rare "SELECT $C FROM cases WHERE grams @> ARRAY['12','23','34','45','56','号1','编号']::text[] AND (strpos(title,'编号123456')>0 OR strpos(body,'编号123456')>0) $O"
run text_none "SELECT $C FROM cases WHERE grams @> ARRAY['典法','民法']::text[] AND (strpos(title,'民法典')>0 OR strpos(body,'民法典')>0) $O"
run text_pairs_apart "SELECT $C FROM cases WHERE grams @> ARRAY['拖欠','欠工','工资','资拖']::text[] AND (strpos(title,'工资拖欠')>0 OR strpos(body,'工资拖欠')>0) $O"
run text_county "SELECT $C FROM cases WHERE grams @> ARRAY['工资']::text[] AND (strpos(title,'工资')>0 OR strpos(body,'工资')>0) AND county='440305' $O"
run text_region6 "$(multi "AND grams @> ARRAY['噪音']::text[] AND (strpos(title,'噪音')>0 OR strpos(body,'噪音')>0)")"
run town_none "SELECT $C FROM cases WHERE town='不存在镇' $O"
run category_none "SELECT $C FROM cases WHERE category='nosuch' $O"
run resolved_month_bound "SELECT $C FROM cases WHERE resolved_at >= '2025-03-01' AND resolved_at < '2025-04-01' AND created_at < '2025-04-01' $O"
