//! Realistic hotline tickets built from hand-written fragments, so the classifier and the store
//! see the same lengths, words and JSON shapes they will see in production, without shipping
//! real (personal) tickets.

use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::{Value, json};

/// Shortest ticket text, in characters.
pub const MIN_CHARS: usize = 50;
/// Longest ticket text, in characters.
pub const MAX_CHARS: usize = 800;

/// The three hotlines and their share of the traffic (12345: 60 %, 110: 15 %, 12348: 25 %).
pub const SOURCES: [(&str, u32); 3] = [("12345", 60), ("110", 15), ("12348", 25)];

/// County-level codes the load spreads over, with a town and a village each, so several Redis
/// hash tags (and queues) are exercised at once.
pub const COUNTIES: [(&str, &str, &str); 6] = [
    ("320831", "城关镇", "东关村"),
    ("320826", "朱码街道", "新民社区"),
    ("320830", "王店乡", "红光村"),
    ("320812", "清江浦街道", "健康社区"),
    ("510802", "东坝街道", "河西社区"),
    ("440305", "粤海街道", "科技园社区"),
];

/// One kind of matter: the words a caller would use for it.
struct Topic {
    /// A short operator title.
    titles: &'static [&'static str],
    /// What happened; one is always used.
    core: &'static [&'static str],
    /// Further details, added until the text is long enough.
    details: &'static [&'static str],
    /// What the caller asks for.
    asks: &'static [&'static str],
    /// Free tags.
    tags: &'static [&'static str],
}

const WAGES: Topic = Topic {
    titles: &["工地拖欠工资", "农民工讨薪", "公司拖欠加班费"],
    core: &[
        "来电人反映在城关镇某建筑工地打工，包工头拖欠工资三个月共两万三千元，多次讨要未果。",
        "来电人称其在一家电子厂上班，公司以效益不好为由拖欠全体员工两个月工资，老板避而不见。",
        "来电人反映离职已经半年，原用人单位至今未结清最后一个月的工资和加班费。",
    ],
    details: &[
        "同一工地还有十几名工人也没拿到工钱，大家准备一起去公司讨薪。",
        "来电人没有签订劳动合同，只有微信聊天记录和考勤照片可以证明劳动关系。",
        "包工头说是总承包方没有拨款，总承包方又说款项早已付清，双方互相推诿。",
        "来电人家中老人生病住院急需用钱，情绪比较激动。",
        "公司人事答复要等年底统一结算，但没有任何书面承诺。",
        "来电人咨询能否申请劳动仲裁，以及需要准备哪些证据材料。",
    ],
    asks: &[
        "希望调解员帮忙协调讨要工资。",
        "请求相关部门督促用人单位尽快支付欠薪。",
        "希望得到法律援助律师的帮助。",
    ],
    tags: &["欠薪", "农民工", "劳动争议"],
};

const NOISE: Topic = Topic {
    titles: &["楼上噪音扰民", "邻里噪音纠纷", "广场舞噪音"],
    core: &[
        "来电人反映楼上住户每天深夜拖动家具、小孩跑跳，噪音很大，严重影响休息。",
        "来电人称隔壁邻居装修从早上七点一直持续到晚上九点，多次上门沟通无果。",
        "来电人反映小区楼下广场舞音响声音过大，每晚持续到十点以后。",
    ],
    details: &[
        "双方已经因为此事在楼道里发生过两次口角，邻居扬言不再理会。",
        "来电人家中有高考学生和卧床老人，长期睡眠不足。",
        "物业曾经出面劝说，但只管用了几天，之后又恢复原样。",
        "来电人已经录下噪音视频作为证据。",
        "社区网格员上门了解过情况，建议双方协商解决。",
    ],
    asks: &[
        "希望社区调解员组织双方当面调解。",
        "请求有关部门上门处理。",
        "希望邻居能遵守作息时间，互相体谅。",
    ],
    tags: &["噪音", "邻里纠纷"],
};

const FAMILY: Topic = Topic {
    titles: &["离婚财产分割咨询", "子女抚养权纠纷", "抚养费追索"],
    core: &[
        "来电人咨询与丈夫协议离婚时，婚后共同购买的房产和车辆应当如何分割。",
        "来电人称已经离婚两年，前夫一直不按离婚协议支付孩子的抚养费。",
        "来电人想起诉离婚，询问六岁孩子的抚养权一般判给哪一方。",
    ],
    details: &[
        "房子首付由男方父母出资，贷款由夫妻二人共同偿还。",
        "对方长期在外地打工，很少回家，也不关心孩子的学习和生活。",
        "双方曾在民政局办理过离婚登记，冷静期内对方反悔。",
        "来电人目前没有固定收入，担心争取不到孩子的抚养权。",
        "对方还有几万元的网络借款，来电人担心要共同承担债务。",
        "孩子目前跟着爷爷奶奶生活，老人也希望孩子留在身边。",
    ],
    asks: &[
        "希望律师提供法律咨询。",
        "请求婚姻家庭调解员帮助协商。",
        "想了解起诉需要准备的材料和诉讼费用。",
    ],
    tags: &["婚姻家庭", "抚养"],
};

const TRAFFIC: Topic = Topic {
    titles: &["交通事故赔偿纠纷", "电动车相撞", "停车场刮擦"],
    core: &[
        "来电人反映上周骑电动车在路口与一辆小轿车相撞，腿部骨折住院，对方不愿垫付医药费。",
        "来电人称其车辆停在小区门口被一辆货车刮擦，货车司机留下电话后一直不接。",
        "来电人反映家人被外卖电动车撞伤，交警已出具事故认定书，对方负主要责任。",
    ],
    details: &[
        "住院已经花了两万多元，保险公司说要等伤残鉴定后才能理赔。",
        "对方车辆只有交强险，没有购买商业险，赔偿能力有限。",
        "双方对误工费和护理费的计算标准分歧较大。",
        "来电人已经保存了行车记录仪视频和现场照片。",
        "交警建议双方先到人民调解委员会进行调解。",
    ],
    asks: &[
        "希望交通事故调解员帮助协调赔偿。",
        "咨询可以主张哪些赔偿项目。",
        "请求尽快处理，避免矛盾激化。",
    ],
    tags: &["交通事故", "赔偿"],
};

const PROPERTY: Topic = Topic {
    titles: &["物业费纠纷", "物业服务不到位", "停车费争议"],
    core: &[
        "来电人反映小区物业公司服务质量差，电梯经常故障，却要求业主上调物业费。",
        "来电人称因拒交物业费，物业公司停了其家门禁卡，还在楼道张贴欠费名单。",
        "来电人反映物业擅自把小区公共绿地改成收费停车位，收益去向不明。",
    ],
    details: &[
        "业主委员会还没有成立，业主们无法和物业公司平等协商。",
        "小区垃圾清运不及时，夏天气味很大，多位业主都有意见。",
        "物业公司表示已经向法院起诉部分欠费业主。",
        "来电人愿意交费，但要求物业先公开近两年的收支明细。",
    ],
    asks: &[
        "希望调解员协调业主和物业公司的矛盾。",
        "咨询拒交物业费的法律后果。",
        "请求主管部门督促物业公司整改。",
    ],
    tags: &["物业", "小区"],
};

const CONSUMER: Topic = Topic {
    titles: &["预付卡退款", "网购退货纠纷", "健身房跑路"],
    core: &[
        "来电人反映在某健身房办理了三千元年卡，健身房突然关门，老板联系不上，要求退款。",
        "来电人称在网上购买的电视机收到时屏幕破损，商家拒绝退货，只同意补偿一百元。",
        "来电人反映给孩子报的培训班停课，机构拒绝退还剩余课时的费用。",
    ],
    details: &[
        "和来电人情况相同的消费者有四十多人，已经建了维权群。",
        "来电人保留了付款记录、合同和聊天截图。",
        "商家称过了七天无理由退货期限，不予处理。",
        "来电人已经向消费者协会投诉，但至今没有结果。",
    ],
    asks: &[
        "要求商家全额退款。",
        "希望有关部门帮助维权。",
        "请求组织调解，挽回损失。",
    ],
    tags: &["消费", "退款"],
};

const STREET_LIGHT: Topic = Topic {
    titles: &["路灯不亮", "井盖缺失", "道路积水"],
    core: &[
        "来电人反映东关村通往镇上的道路有五盏路灯已经半个月不亮，夜间出行很不安全。",
        "来电人称小区门口人行道上一个井盖缺失，已经有老人差点掉进去。",
        "来电人反映每逢下雨路口就大面积积水，下水道堵塞没人疏通。",
    ],
    details: &[
        "附近有一所小学，学生放学时天已经黑了。",
        "来电人之前已经打过一次电话，答复会安排维修，但一直没有人来。",
        "周边居民都很担心，希望尽快处理。",
    ],
    asks: &["请求相关部门尽快维修。", "希望尽快派人到现场查看。"],
    tags: &["市政设施"],
};

const THREAT: Topic = Topic {
    titles: &["宅基地纠纷激化", "借款纠纷扬言报复"],
    core: &[
        "来电人反映与邻居因宅基地边界发生争执，对方扬言要拿刀砍人，现场情绪激动。",
        "来电人称借给同村人五万元，对方到期不还，来电人扬言要去对方家里闹事。",
    ],
    details: &[
        "双方家族人员都聚集在现场，有二十多人。",
        "民警已经到场暂时控制了局面，但矛盾没有化解。",
        "来电人说如果再不解决，就要去镇政府上访。",
        "对方家里有老人和孩子，担心发生意外。",
    ],
    asks: &[
        "希望尽快介入调解，防止矛盾升级。",
        "请求派出所和司法所联合处理。",
    ],
    tags: &["矛盾激化"],
};

/// Every topic, with the sources that send it and their weights per source
/// (12345, 110, 12348).
const TOPICS: [(&Topic, [u32; 3]); 8] = [
    (&WAGES, [20, 5, 25]),
    (&NOISE, [15, 25, 2]),
    (&FAMILY, [8, 10, 40]),
    (&TRAFFIC, [8, 30, 10]),
    (&PROPERTY, [15, 3, 8]),
    (&CONSUMER, [18, 2, 15]),
    (&STREET_LIGHT, [12, 5, 0]),
    (&THREAT, [4, 20, 0]),
];

/// How calls open, as operators write them.
const OPENINGS: &[&str] = &["", "市民来电：", "来电人表示，", "网格员转来群众反映："];

/// Generic details any matter may carry.
const FILLERS: &[&str] = &[
    "来电人情绪较为激动，反复强调问题已经拖了很久。",
    "来电人表示愿意配合调查，可以提供相关证明材料。",
    "来电人要求对其个人信息保密。",
    "来电人此前已向村委会反映过，村委会表示会协调，但没有下文。",
    "来电人希望工作人员回电告知处理进展。",
    "经核实，来电人反映的情况基本属实。",
];

/// Picks an index by weight; `weights` must not be all zero.
fn weighted<R: Rng>(rng: &mut R, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut roll = rng.random_range(0..total.max(1));
    for (i, w) in weights.iter().enumerate() {
        if roll < *w {
            return i;
        }
        roll -= w;
    }
    weights.len() - 1
}

/// Picks a source by its share of the traffic.
pub fn pick_source<R: Rng>(rng: &mut R) -> &'static str {
    let weights: Vec<u32> = SOURCES.iter().map(|(_, w)| *w).collect();
    SOURCES[weighted(rng, &weights)].0
}

/// A string from a non-empty list of constants.
fn one<R: Rng>(rng: &mut R, list: &[&'static str]) -> &'static str {
    list.choose(rng).copied().unwrap_or_default()
}

/// A ticket text of 50 to 800 characters about `topic`, cut at a sentence end.
fn text<R: Rng>(rng: &mut R, topic: &Topic) -> String {
    // Most tickets are short; a few are long stories.
    let target = if rng.random_bool(0.7) {
        rng.random_range(MIN_CHARS..=200)
    } else {
        rng.random_range(200..=MAX_CHARS)
    };
    let mut parts: Vec<&str> = vec![one(rng, OPENINGS), one(rng, topic.core)];
    let ask = one(rng, topic.asks);
    let len = |p: &[&str]| p.iter().map(|s| s.chars().count()).sum::<usize>();
    // Bounded: at most 40 sentences, whatever the target.
    for _ in 0..40 {
        if len(&parts) + ask.chars().count() >= target {
            break;
        }
        let extra = if rng.random_bool(0.7) {
            one(rng, topic.details)
        } else {
            one(rng, FILLERS)
        };
        if len(&parts) + extra.chars().count() + ask.chars().count() > MAX_CHARS {
            break;
        }
        parts.push(extra);
    }
    parts.push(ask);
    let mut s: String = parts.concat();
    // Pad a short one with fillers (never past the maximum).
    for filler in FILLERS {
        if s.chars().count() >= MIN_CHARS {
            break;
        }
        s.push_str(filler);
    }
    s.chars().take(MAX_CHARS).collect()
}

/// A surname and given name, for the caller.
fn caller_name<R: Rng>(rng: &mut R) -> String {
    const SURNAMES: &[&str] = &["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴"];
    const GIVEN: &[&str] = &[
        "建国", "秀英", "桂兰", "志强", "海燕", "明", "伟", "芳", "磊",
    ];
    format!("{}{}", one(rng, SURNAMES), one(rng, GIVEN))
}

/// Civil date from days since 1970-01-01 (H. Hinnant's algorithm), to avoid a date crate.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// RFC 3339 UTC time `minutes_ago` minutes before now: the hotline took the call a little
/// before handing it over.
pub fn received_at(minutes_ago: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        .saturating_sub(minutes_ago * 60) as i64;
    let (y, m, d) = civil(now.div_euclid(86_400));
    let secs = now.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A complete `POST /v1/tickets` body from `source` in a random county.
pub fn ticket_request<R: Rng>(rng: &mut R, source: &str, external_id: &str) -> Value {
    let column = SOURCES.iter().position(|(s, _)| *s == source).unwrap_or(0);
    let weights: Vec<u32> = TOPICS.iter().map(|(_, w)| w[column]).collect();
    let topic = TOPICS[weighted(rng, &weights)].0;
    let (code, town, village) = COUNTIES[rng.random_range(0..COUNTIES.len())];
    let channel = one(rng, &["phone", "phone", "phone", "web", "wechat", "app"]);
    let transfer = one(rng, &["one_click", "automatic", "manual"]);
    json!({
        "source": source,
        "external_id": external_id,
        "received_at": received_at(rng.random_range(1..120)),
        "channel": channel,
        "transfer": transfer,
        "caller": {
            "name": caller_name(rng),
            "phone": format!("13{:09}", rng.random_range(0..1_000_000_000u64)),
        },
        "region": {"code": code, "town": town, "village": village, "grid": format!("第{}网格", rng.random_range(1..30))},
        "title": one(rng, topic.titles),
        "text": text(rng, topic),
        "people_involved": rng.random_range(1..6),
        "tags": [one(rng, topic.tags)],
    })
}

/// Sentences that make the classifier raise a ticket (threats of violence or self-harm, group
/// action, a crowd of 20 or more), for the `burst` scenario: a real morning burst in one county
/// is typically one incident many people call about.
const RAISING: &[&str] = &[
    "十几名工人扬言今天再不给钱就去市政府门口拉横幅集体上访。",
    "对方扬言要拿刀砍人，来电人担心出人命，请求尽快处理。",
    "村里几十个村民准备明天堵路，事态可能扩大。",
    "来电人情绪激动，称再解决不了就去跳楼，一死了之。",
    "二十多名业主聚集在售楼处静坐维权，现场有冲突升级的迹象。",
    "三十余名家属围堵医院大门，要求院方给个说法。",
];

/// A `POST /v1/tickets` body from `source` in `county` (one of [`COUNTIES`]). When `raised`,
/// the text carries a [`RAISING`] sentence and, one time in two, `people_involved` of 20 to 60,
/// so the classifier gives it a raised warning level (orange or red); the text stays within
/// [`MIN_CHARS`]..=[`MAX_CHARS`].
pub fn county_request<R: Rng>(
    rng: &mut R,
    source: &str,
    external_id: &str,
    county: &str,
    raised: bool,
) -> Value {
    let mut body = ticket_request(rng, source, external_id);
    let (code, town, village) = COUNTIES
        .iter()
        .copied()
        .find(|(c, _, _)| *c == county)
        .unwrap_or(COUNTIES[0]);
    body["region"] = json!({"code": code, "town": town, "village": village, "grid": format!("第{}网格", rng.random_range(1..30))});
    if raised {
        let extra = one(rng, RAISING);
        let room = MAX_CHARS - extra.chars().count();
        let text: String = body["text"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .take(room)
            .collect();
        body["text"] = json!(format!("{text}{extra}"));
        if rng.random_bool(0.5) {
            body["people_involved"] = json!(rng.random_range(20..=60));
        }
    }
    body
}

/// A classification like the gateway's `Decision`, of realistic size, for the ceiling scenario.
pub fn classification_json<R: Rng>(
    rng: &mut R,
) -> (String, &'static str, &'static str, &'static str) {
    let (service, category, level) = *[
        ("mediation", "labour", "yellow"),
        ("mediation", "neighbour", "none"),
        ("legal_consultation", "marriage_family", "none"),
        ("mediation", "traffic", "yellow"),
        ("mediation", "property_mgmt", "none"),
        ("mediation", "consumer", "none"),
        ("mediation", "housing_land", "red"),
    ]
    .choose(rng)
    .unwrap_or(&("mediation", "labour", "none"));
    let json = json!({
        "service": service,
        "category": category,
        "warning_level": level,
        "confidence": rng.random_range(0.5..1.0),
        "reasons": ["命中\"拖欠工资\"→labour", "命中\"调解\"→mediation", "群体人数≥5→red"],
        "model": "lexicon-2026.11",
    });
    (json.to_string(), service, category, level)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn texts_stay_within_the_bounds() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for (source, _) in SOURCES {
            for i in 0..300 {
                let body = ticket_request(&mut rng, source, &format!("X-{i}"));
                let n = body["text"]
                    .as_str()
                    .map(|t| t.chars().count())
                    .unwrap_or(0);
                assert!((MIN_CHARS..=MAX_CHARS).contains(&n), "{n} characters");
            }
        }
    }

    #[test]
    fn county_requests_stay_within_the_bounds_and_the_county() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for i in 0..300 {
            let body = county_request(&mut rng, "12345", &format!("B-{i}"), "320831", i % 2 == 0);
            let n = body["text"]
                .as_str()
                .map(|t| t.chars().count())
                .unwrap_or(0);
            assert!((MIN_CHARS..=MAX_CHARS).contains(&n), "{n} characters");
            assert_eq!(body["region"]["code"], "320831");
        }
    }

    #[test]
    fn dates_are_rfc3339() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(20_416), (2025, 11, 24));
        assert_eq!(received_at(0).len(), 20);
    }
}
