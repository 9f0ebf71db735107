CREATE TEMP TABLE phrases(i int, p text);
INSERT INTO phrases SELECT row_number() over () - 1, p FROM unnest(ARRAY[
 '来电人反映','老板拖欠工资三个月','双方多次协商未果','楼上邻居装修噪音很大','希望调解员帮忙协调','请问离婚后孩子的抚养权怎么判',
 '网上买的手机是假货','商家不给退款','宅基地边界有争议','村里征地补偿款没有到位','物业费收取不合理','交通事故对方不赔偿',
 '医院手术后出现并发症','借钱不还已经两年','合同到期后对方违约','工地受伤老板不管','小区停车位纠纷','遗产继承兄弟之间有矛盾',
 '今天在工地吵起来了','要求依法处理','情绪比较激动','涉及人数较多','已经报警处理','希望律师解答',
 '公司拖欠社保','租房押金不退','赡养老人问题','宠物狗咬伤邻居','漏水导致楼下受损','劳动合同未签',
 '在城关镇某工地打工','多次到村委会反映','共两万元','约五十人聚集','家里老人生病无人照顾','承包土地被收回',
 '噪音扰民影响休息','门面房租金纠纷','快递丢失不赔偿','装修质量问题','夫妻感情破裂要求离婚','欠薪讨要无果',
 '邻里之间因琐事争吵','养殖污染环境','学校收费问题','保险公司拒赔','网络诈骗被骗','高空抛物砸坏车辆']) AS p;

INSERT INTO cases (id, county, ver, status, source, external_id, sender, service, category, level, town, village, grid,
  agent, created_at, resolved_at, ended_at, title, body, grams, caller_name, caller_phone, caller_key, request, fields, history)
SELECT
  c.county || '-' || lpad(g::text, 8, '0'),
  c.county, 3,
  (ARRAY['closed','closed','closed','returned','withdrawn','transferred'])[1 + (g*7 % 6)],
  (ARRAY['12345','12345','110','12348'])[1 + (g*3 % 4)],
  'E-' || g, 'partner-' || (g % 5),
  (ARRAY['mediation','legal_consultation','mediation','out_of_scope','triage'])[1 + (g*11 % 5)],
  (ARRAY['marriage_family','neighbour','housing_land','demolition','contract_debt','business','injury','labour','consumer','medical','traffic','property_mgmt','environment','criminal','administrative','other'])[1 + (g*13 % 16)],
  (ARRAY['none','none','none','none','none','none','yellow','yellow','red','orange'])[1 + (g*17 % 10)],
  '镇' || (g % 30), NULL, NULL,
  'agent-' || (g % 200),
  t.created, t.created + interval '3 days', t.created + interval '4 days',
  x.title, x.body, '{}', '某某', '1380000' || lpad((g % 10000)::text, 4, '0'), md5('k' || (g % 100000)),
  '{}'::jsonb, '{}'::jsonb, '[]'::jsonb
FROM generate_series(1, 1000000) g
CROSS JOIN LATERAL (SELECT (ARRAY['320831','320831','320831','320812','320826','320830','320324','440305','440305','110101','330106','510802','320882','320883'])[1 + (g*19 % 14)] AS county) c
CROSS JOIN LATERAL (SELECT timestamptz '2024-01-01' + (g * interval '90 seconds') AS created) t
CROSS JOIN LATERAL (SELECT
   (SELECT p FROM phrases WHERE i = (g*31) % 48) AS title,
   (SELECT p FROM phrases WHERE i = (g*7) % 48) || '，' || (SELECT p FROM phrases WHERE i = (g*37+5) % 48) || '，' || (SELECT p FROM phrases WHERE i = (g*41+9) % 48) || '，编号' || g AS body) x;
