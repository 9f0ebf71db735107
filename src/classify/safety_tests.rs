//! The safety rules of issue 17: a ticket with a warning level, or with evidence of a dispute
//! between parties or of a question about rights and duties, is never sent back to a
//! department; sending back needs positive evidence of a department matter; each decision names
//! the rule that decided. Unit tests per rule, and a property over generated texts and the
//! written training rows: adding a danger sentence never lowers the level and never makes the
//! ticket `out_of_scope`.

use proptest::prelude::*;

use super::engine::tests::settings;
use super::{Classifier, Decision, Lexicon, Service};
use crate::ticket::{Source, TicketText};

const SHIPPED: &str = include_str!("../../config/lexicon.toml");
const WRITTEN: &str = include_str!("../../data/written/tickets.jsonl");

fn classifier() -> &'static Classifier {
    static C: std::sync::OnceLock<Classifier> = std::sync::OnceLock::new();
    C.get_or_init(|| {
        Classifier::from_lexicon(Lexicon::from_toml_str(SHIPPED).unwrap(), &settings()).unwrap()
    })
}

/// The shipped lexicon without its `[safety]` section: what the scores alone decide.
fn unguarded() -> Classifier {
    let start = SHIPPED.find("\n[safety]").unwrap();
    let end = SHIPPED[start + 1..]
        .find("\n[")
        .map_or(SHIPPED.len(), |i| start + 1 + i);
    let s = format!("{}{}", &SHIPPED[..start], &SHIPPED[end..]);
    Classifier::from_lexicon(Lexicon::from_toml_str(&s).unwrap(), &settings()).unwrap()
}

fn decide(source: Source, text: &str) -> Decision {
    classifier().classify(&TicketText {
        source,
        title: "",
        text,
        people_involved: None,
        prior_calls: 0,
    })
}

fn rank(level: &str) -> usize {
    settings()
        .warning_levels
        .iter()
        .position(|l| l == level)
        .unwrap()
}

fn rule_of(d: &Decision) -> &str {
    d.reasons
        .iter()
        .find(|r| r.starts_with("决定规则") || r.contains("转人工分拣"))
        .map_or("", String::as_str)
}

#[test]
fn wage_arrears_with_a_crowd_is_never_sent_back_from_12345_or_110() {
    let text = "工地老板拖欠农民工工资两个月,十几个人要去讨薪";
    for source in [Source::Citizen12345, Source::Police110] {
        let d = decide(source, text);
        assert_ne!(d.service, Service::OutOfScope, "{source}: {d:?}");
        assert_ne!(d.warning_level, "none", "{source}: {d:?}");
    }
}

#[test]
fn a_warning_level_forbids_a_return_and_the_reason_says_so() {
    // The scores alone send this back (a broken street light); the old person hurt makes it
    // yellow, and a yellow ticket is not sent back.
    let text = "小区门口的路灯坏了一个多月，上周一位老人晚上出门摔伤了，希望有关部门尽快修理。";
    let d = decide(Source::Citizen12345, text);
    assert_eq!(d.warning_level, "yellow", "{d:?}");
    assert_ne!(d.service, Service::OutOfScope, "{d:?}");
    assert!(rule_of(&d).contains("有预警yellow"), "{d:?}");
}

#[test]
fn a_threat_in_a_department_matter_is_not_sent_back() {
    let d = decide(
        Source::Citizen12345,
        "小区门口的路灯坏了，再不修我就拿汽油去市政府同归于尽",
    );
    assert_eq!(d.warning_level, "red", "{d:?}");
    assert_ne!(d.service, Service::OutOfScope, "{d:?}");
    assert!(rule_of(&d).contains("有预警red"), "{d:?}");
}

#[test]
fn evidence_of_a_dispute_forbids_a_return() {
    let text = "小区下水道堵了，物业和业主双方互相推诿，希望有关部门处理。";
    let d = decide(Source::Citizen12345, text);
    assert_eq!(d.warning_level, "none", "{d:?}");
    assert_ne!(d.service, Service::OutOfScope, "{d:?}");
    let plain = unguarded().classify(&TicketText {
        source: Source::Citizen12345,
        title: "",
        text,
        people_involved: None,
        prior_calls: 0,
    });
    if plain.service == Service::OutOfScope {
        assert!(rule_of(&d).contains("有当事人纠纷的证据\"双方\""), "{d:?}");
    }
}

#[test]
fn evidence_of_a_question_about_rights_forbids_a_return() {
    let text = "小区门口的路面塌了，我骑车摔伤了，这个责任谁负责？";
    let d = decide(Source::Citizen12345, text);
    assert_ne!(d.service, Service::OutOfScope, "{d:?}");
    let text = "公交车急刹车把我摔伤了，请问公交公司要承担什么责任？";
    let d = decide(Source::Citizen12345, text);
    assert_ne!(d.service, Service::OutOfScope, "{d:?}");
}

#[test]
fn a_return_needs_a_department_word() {
    // The scores may lean out of scope on the model alone; without a department word the
    // ticket is not sent back.
    for text in [
        "2023年5月，某村村民张某与李某因琐事在某地发生口角，经调解员多次上门，未能达成一致。",
        "本人于2022年3月入职某公司，至今已有两年。",
    ] {
        let d = decide(Source::Citizen12345, text);
        assert_ne!(d.service, Service::OutOfScope, "{text}: {d:?}");
    }
}

#[test]
fn a_department_matter_with_no_other_evidence_still_goes_back_and_says_why() {
    let d = decide(
        Source::Citizen12345,
        "小区门口的路灯坏了一个多月，晚上很黑，希望有关部门尽快修理。",
    );
    assert_eq!(d.service, Service::OutOfScope, "{d:?}");
    assert!(rule_of(&d).contains("有部门事项证据"), "{d:?}");
}

#[test]
fn every_decision_names_the_rule_that_decided() {
    for text in [
        "小区门口的路灯坏了一个多月，晚上很黑，希望有关部门尽快修理。",
        "请问离婚后孩子的抚养权怎么判？",
        "老板拖欠工资三个月，工人去讨薪，双方吵起来了，请求帮忙协调。",
        "嗯嗯",
        "hello",
        "",
    ] {
        let d = decide(Source::Citizen12345, text);
        assert!(!rule_of(&d).is_empty(), "{text}: {d:?}");
    }
}

/// Danger sentences written for this test (not taken from any data set), each of which the
/// rules detect on its own. They start and end with a harmless character, so that they cannot
/// merge with the text around them into a harmless phrase (剪 + 刀).
const DANGER: &[&str] = &[
    "他说要拿刀砍死我。",
    "对方扬言要放火烧了我家。",
    "她说活不下去了，想跳楼。",
    "二十多名工人堵门讨薪。",
    "他今天又说不想活了。",
    "他拿着汽油说要同归于尽。",
    "三十多个村民聚集在村委会门口。",
    "邻居把孕妇推倒了。",
    "她吃了安眠药想寻死。",
    "有人持械冲进了厂里。",
    "他说要找人废了我。",
    "全村的人都围在村委会门口。",
    "她说活着也没意思了。",
    "他拿着棍子在门口等我。",
];

/// Fragments for generated texts: department matters, disputes, questions, numbers, harmless
/// everyday words that contain danger characters.
const FRAGMENTS: &[&str] = &[
    "小区门口的路灯坏了",
    "希望有关部门尽快修理",
    "下水道堵了",
    "社保卡怎么办理",
    "老板拖欠工资",
    "双方吵起来了",
    "请问怎么办？",
    "二十多名",
    "工人",
    "堵门",
    "刀削面",
    "砍价",
    "杀毒",
    "老人",
    "，",
    "。",
    "\n",
    "多次反映",
    "请问离婚后孩子的抚养权怎么判？",
    "公交站台",
    "五个人",
    "他说",
    "不",
    "没有",
];

fn written_rows() -> &'static [String] {
    static ROWS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    ROWS.get_or_init(|| {
        WRITTEN
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["text"].as_str().map(str::to_owned))
            .collect()
    })
}

fn text_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..14)
            .prop_map(|parts| parts.concat()),
        "\\PC{0,60}",
        (0..written_rows().len()).prop_map(|i| written_rows()[i].clone()),
    ]
}

/// Byte offsets where a sentence may be inserted: the start, the end, and after every
/// sentence-ending mark.
fn boundaries(text: &str) -> Vec<usize> {
    let mut out = vec![0, text.len()];
    for (i, c) in text.char_indices() {
        if matches!(c, '。' | '！' | '？' | '!' | '?' | '\n' | '；') {
            out.push(i + c.len_utf8());
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn a_danger_sentence_never_lowers_the_level_nor_allows_a_return(
        text in text_strategy(),
        danger in proptest::sample::select(DANGER),
        at in any::<proptest::sample::Index>(),
        source in proptest::sample::select(Source::ALL.to_vec()),
    ) {
        let c = classifier();
        let run = |t: &str| c.classify(&TicketText {
            source, title: "", text: t, people_involved: None, prior_calls: 0,
        });
        let before = run(&text);
        let alone = run(danger);
        prop_assert_ne!(&alone.warning_level, "none");
        let places = boundaries(&text);
        let at = places[at.index(places.len())];
        let combined = format!("{}{}{}", &text[..at], danger, &text[at..]);
        let after = run(&combined);
        prop_assert!(
            rank(&after.warning_level) <= rank(&before.warning_level),
            "level lowered: {:?} → {:?} for {:?}", before.warning_level, after, combined
        );
        prop_assert!(
            rank(&after.warning_level) <= rank(&alone.warning_level),
            "danger lost: {:?} alone, {:?} in {:?}", alone.warning_level, after, combined
        );
        prop_assert_ne!(after.service, Service::OutOfScope, "{:?}: {:?}", combined, after);
    }
}

#[test]
fn a_traditional_text_and_its_simplified_form_get_the_same_decision() {
    let pairs = [
        (
            "老公家暴，我想離婚，他威脅我說要輕生",
            "老公家暴，我想离婚，他威胁我说要轻生",
        ),
        (
            "工地老闆拖欠農民工工資兩個月，十幾個人要去討薪",
            "工地老板拖欠农民工工资两个月，十几个人要去讨薪",
        ),
        ("鄰居揚言要砍死我", "邻居扬言要砍死我"),
    ];
    for (traditional, simplified) in pairs {
        for source in Source::ALL {
            let t = decide(source, traditional);
            let s = decide(source, simplified);
            assert_eq!(t, s, "{traditional}");
        }
    }
    let d = decide(Source::Citizen12345, pairs[0].0);
    assert_eq!(d.warning_level, "red", "{d:?}");
}

#[test]
fn every_written_row_in_traditional_characters_gets_the_same_decision() {
    // Each simplified character replaced by a traditional one that OpenCC's table maps back to
    // it (the first such key), so the traditional text is a faithful rewriting.
    let table = include_str!("../../data/opencc/TSCharacters.txt");
    let mut back = std::collections::HashMap::new();
    for line in table.lines().filter(|l| !l.starts_with('#')) {
        let Some((k, v)) = line.split_once('\t') else {
            continue;
        };
        let (Some(k), Some(v)) = (k.chars().next(), v.chars().next()) else {
            continue;
        };
        if k != v {
            back.entry(v).or_insert(k);
        }
    }
    let mut converted = 0;
    for text in written_rows().iter().step_by(3) {
        let traditional: String = text.chars().map(|c| *back.get(&c).unwrap_or(&c)).collect();
        if traditional != *text {
            converted += 1;
        }
        for source in [Source::Citizen12345, Source::Police110] {
            assert_eq!(
                decide(source, &traditional),
                decide(source, text),
                "{traditional}"
            );
        }
    }
    assert!(converted > 500, "{converted}");
}

fn level(text: &str) -> String {
    decide(Source::Citizen12345, text).warning_level
}

#[test]
fn threats_said_in_other_words_are_red() {
    for text in [
        "他说要找人废了我",
        "对方说再不还钱就卸我一条腿",
        "那个租客拿着棍子在门口等我",
        "邻居说要在我家井里下毒",
    ] {
        assert_eq!(
            level(text),
            "red",
            "{text}: {:?}",
            decide(Source::Police110, text)
        );
    }
    let d = decide(Source::Police110, "他说要找人废了我");
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("…\"废了我\"→red(暴力威胁)")),
        "{d:?}"
    );
}

#[test]
fn a_negated_warning_word_does_not_count() {
    assert_eq!(level("对方并没有威胁我，只是合同到期不续了"), "none");
    assert_eq!(level("他没有打人，就是欠钱不还"), "none");
    // The same words without the negation do.
    assert_eq!(level("他打人了，还欠钱不还"), "red");
}

#[test]
fn crowds_without_a_number_count_when_they_act_together() {
    assert_eq!(level("一群人围着物业办公室不让经理出来"), "red");
    assert_eq!(level("全村的人都到镇政府门口坐着"), "orange");
    let d = decide(Source::Citizen12345, "一群人围着物业办公室不让经理出来");
    assert!(
        d.reasons.iter().any(|r| r.contains("\"一群人\"约5人→red")),
        "{d:?}"
    );
    // A crowd that does nothing together is a description.
    assert_eq!(level("晚上广场上有一群人在跳舞，声音很大"), "none");
    // Spoken numbers of people.
    assert_eq!(level("一百来号业主在售楼部拉着横幅"), "orange");
    assert_eq!(level("亲戚们来了十多口人，在医院走廊里闹"), "red");
}

#[test]
fn self_harm_said_indirectly_is_red() {
    for text in [
        "她说活着也没意思了",
        "他说今晚就从楼顶跳下去",
        "来电人称已经写好了遗书",
        "老人说准备把攒下的药一次吃完",
    ] {
        assert_eq!(level(text), "red", "{text}");
    }
}

#[test]
fn harm_to_vulnerable_people_and_repeated_quarrels_are_yellow() {
    assert_eq!(level("继父把孩子关在门外不让回家"), "yellow");
    assert_eq!(level("儿子儿媳对老两口不管不问"), "yellow");
    assert_eq!(level("为了门口那块空地，我们两家三天两头吵"), "yellow");
    assert_eq!(level("婆媳俩隔三差五就吵"), "yellow");
    // Negotiating many times is not quarrelling many times.
    assert_eq!(
        level("老板拖欠工资三个月，双方多次协商未果，今天在工地吵起来了"),
        "none"
    );
}

#[test]
fn everyday_senses_of_frightening_words_stay_at_none() {
    for text in [
        "我在菜市场跟摊主砍价，回家发现秤不够",
        "网上买的衣服说是跳楼价，收到货发现是旧的",
        "商场杀价很厉害，买完第二天就降价了",
        "今天热死了，小区停电一下午",
        "笑死了，快递员把包裹送错了",
        "他在家收拾东西准备搬走，押金不退",
        "电脑要杀毒，买了把剪刀",
    ] {
        assert_eq!(
            level(text),
            "none",
            "{text}: {:?}",
            decide(Source::Citizen12345, text)
        );
    }
}

#[test]
fn a_clear_question_about_rights_goes_to_a_lawyer_not_to_triage() {
    for text in ["高空坠物砸伤人谁负责", "楼上掉下来的花盆砸伤了路人，谁负责"]
    {
        let d = decide(Source::Citizen12345, text);
        assert_eq!(d.service, Service::LegalConsultation, "{text}: {d:?}");
        assert!(!rule_of(&d).is_empty(), "{d:?}");
    }
    // Without a subject it is still a human's call.
    let d = decide(Source::Citizen12345, "这个谁负责？");
    assert_eq!(d.service, Service::Triage, "{d:?}");
}

/// The shipped lexicon with another `[safety] desk_above`.
fn with_desk_above(v: f64) -> Classifier {
    let s = SHIPPED.replace("desk_above = 0.7", &format!("desk_above = {v}"));
    assert_ne!(s, SHIPPED);
    Classifier::from_lexicon(Lexicon::from_toml_str(&s).unwrap(), &settings()).unwrap()
}

#[test]
fn a_kept_ticket_goes_to_a_desk_only_on_strong_in_scope_evidence() {
    let run = |c: &Classifier, text: &str| {
        c.classify(&TicketText {
            source: Source::Citizen12345,
            title: "",
            text,
            people_involved: None,
            prior_calls: 0,
        })
    };
    // A department matter with a live quarrel between the parties: the scores would send it
    // back, the dispute keeps it, and the in-scope evidence (a quarrel, property management) is
    // strong: a mediator.
    let strong = "小区门口的路灯坏了，物业和业主双方吵起来了，希望有关部门尽快修理。";
    let d = decide(Source::Citizen12345, strong);
    assert_eq!(d.service, Service::Mediation, "{d:?}");
    assert!(rule_of(&d).contains("不得退回部门→调解"), "{d:?}");
    // The same ticket when no in-scope evidence is strong enough: a person decides.
    let d = run(&with_desk_above(1.0), strong);
    assert_eq!(d.service, Service::Triage, "{d:?}");
    assert!(rule_of(&d).contains("案内证据不够强"), "{d:?}");
    assert_eq!(d.warning_level, "none", "{d:?}");
    // A board message whose only in-scope word is a dispute word: doubt, so triage, not a
    // lawyer.
    let weak = "路灯坏了三个月，施工方拖欠维修款，希望有关部门尽快修理路灯。";
    let d = decide(Source::Citizen12345, weak);
    assert_eq!(d.service, Service::Triage, "{d:?}");
    assert!(
        rule_of(&d).contains("有当事人纠纷的证据\"拖欠\"，不得退回部门，案内证据不够强"),
        "{d:?}"
    );
    // Whatever the desk, a warning stays and is never sent back.
    let d = run(
        &with_desk_above(1.0),
        "小区门口的路灯坏了，邻居说要拿刀砍死物业经理。",
    );
    assert_eq!(d.warning_level, "red", "{d:?}");
    assert_ne!(d.service, Service::OutOfScope, "{d:?}");
}

#[test]
fn a_desk_threshold_outside_zero_to_one_is_refused_naming_the_key() {
    let s = SHIPPED.replace("desk_above = 0.7", "desk_above = 1.5");
    let err = Lexicon::from_toml_str(&s).unwrap_err().to_string();
    assert!(err.contains("safety.desk_above"), "{err}");
}

#[test]
fn department_matters_in_everyday_words_raise_no_warning() {
    // Words that fired on government-board messages before lexicon 2026.12-3: noise, danger
    // on the road, a ban on gatherings, groups of people, petrol prices, chemicals, illness,
    // accounts, knives on sale. None names an intent, a harm to someone, or a crowd acting.
    for text in [
        "工地施工噪音扰民，晚上无法入睡，希望有关部门处理",
        "小区门口没有红绿灯，老人小孩过马路很危险，希望安装",
        "防疫期间禁止人员聚集，请问广场舞还能跳吗",
        "老年群体的养老金什么时候上调",
        "加油站的汽油价格太高，请物价部门管一管",
        "化工厂的硫酸罐一直在漏，河水都变色了",
        "我爸突发疾病送医，医保报销怎么办理",
        "老板说月底再算账，工资还没发",
        "刀具店卖的菜刀生锈了，商家不给换",
        "那部电影里杀人的镜头太多，能退票吗",
        "我们家兄弟五个，想问老宅怎么分",
        "楼上每天晚上都很吵，影响休息",
        "小孩打疫苗需要带什么材料",
    ] {
        assert_eq!(
            level(text),
            "none",
            "{text}: {:?}",
            decide(Source::Citizen12345, text)
        );
    }
}

#[test]
fn danger_said_in_ordinary_words_is_raised() {
    for (text, want) in [
        // An intent and a harm against someone, said in other words than the lexicon's.
        ("他说出了这个门就让我横着出去", "red"),
        ("对方说今晚找人收拾我", "red"),
        ("前夫说要给我点颜色看看", "red"),
        ("他警告我说让我走夜路小心点", "red"),
        // Self-harm said indirectly.
        ("她说没脸见人了，想去死", "red"),
        ("老人说不想拖累儿女了", "red"),
        ("工人坐在塔吊上不下来", "red"),
        // Crowds named without a number, or with a word between the number and the people.
        ("工人们围在项目部不让老板走", "red"),
        ("十几个外地民工堵在工地门口讨薪", "red"),
        ("半个村子的人都跑到镇上去了，要拦书记的车", "orange"),
        // A vulnerable person harmed or neglected.
        ("八十多岁的老母亲被儿子赶出家门", "yellow"),
        ("孩子被继母用皮带抽", "yellow"),
        // A quarrel that keeps coming back.
        ("为了车位，两家一见面就吵", "yellow"),
    ] {
        let d = decide(Source::Citizen12345, text);
        assert!(
            rank(&d.warning_level) <= rank(want),
            "{text}: want {want}, got {d:?}"
        );
    }
}

#[test]
fn a_harm_counts_when_it_is_done_to_someone() {
    // A verb of harm right before whom it is done to, with an intent nearby (then_after).
    assert_eq!(level("他说下次见到就揍你"), "red");
    assert_eq!(level("对方扬言要打断他"), "red");
    // The same verbs on things, or as parts of everyday words, are no threat.
    for text in [
        "他说要打电话给物业",
        "他说要收拾他的东西搬走",
        "对方说要打官司",
        "老板说要打听一下政策",
    ] {
        assert_eq!(
            level(text),
            "none",
            "{text}: {:?}",
            decide(Source::Police110, text)
        );
    }
}

#[test]
fn a_vulnerable_person_harmed_in_the_passive_is_yellow() {
    // then_before: the passive mark before the harm (被他爸打, 被工头骗).
    assert_eq!(level("隔壁的小孩经常被他爸打"), "yellow");
    assert_eq!(level("残疾人被工头骗去干活"), "yellow");
    // Without the passive mark the bare verb says nothing of harm (小孩打疫苗).
    assert_eq!(level("小孩打疫苗需要预约吗"), "none");
    assert_eq!(level("孩子被要求打疫苗"), "none");
}

#[test]
fn a_frightening_word_that_is_no_warning_still_forbids_a_return() {
    // 扬言 without a harm is no threat (no level), but a person sees the ticket.
    let d = decide(
        Source::Citizen12345,
        "开发商扬言要停水停电，希望有关部门尽快处理。",
    );
    assert_eq!(d.warning_level, "none", "{d:?}");
    assert_ne!(d.service, Service::OutOfScope, "{d:?}");
    assert!(rule_of(&d).contains("有可能危险的词\"扬言\""), "{d:?}");
    // Inside an everyday word it is not one (刀 in 刀削面).
    let d = decide(
        Source::Citizen12345,
        "刀削面馆门口的路灯坏了，希望有关部门尽快修理。",
    );
    assert_eq!(d.service, Service::OutOfScope, "{d:?}");
}
