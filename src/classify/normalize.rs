//! Text normalisation shared by the lexicon and the tickets, and the head-count reader.
//!
//! The same [`normalize`] runs over every lexicon term at load time and over every ticket, so a
//! term written with half-width digits matches a ticket typed with full-width ones (`３０人` and
//! `30人`), and `ABC` in a ticket matches `abc` in the lexicon.
//!
//! Head counts (`二十多名工人`, `30余人`, `上百人`, `几十个村民`) are read by a small hand-written
//! parser rather than by lexicon terms because the numbers are open-ended. Counts are lower
//! bounds: `二十多` reads as 20, `几十` as 20 (`几` reads as 2), `上百` as 100, and a range such as
//! `三五个人` or `七八十人` keeps its first figure. A number only counts as people when it is
//! followed by a people unit (`名`, `位`, `户` …) or by a people noun (`人`, `工人`, `村民` …),
//! possibly after `多/余/来` and the generic classifier `个`; ordinals and rankings (`第五人民医院`,
//! `前十名`) are skipped.

use unicode_normalization::UnicodeNormalization;

use super::t2s::simplify;

/// NFKC (full-width letters, digits and punctuation become half-width), ASCII lower-case, and
/// traditional characters to simplified ([`super::t2s`]).
///
/// Most tickets are Chinese ideographs, ASCII and full-width punctuation, whose NFKC forms are
/// known without tables; those take a fast path of one pass. Any other character sends the
/// whole text through the full NFKC algorithm, so the result is always NFKC (property-tested).
pub(crate) fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match fast_nfkc(c) {
            Some(n) => out.push(simplify(n.to_ascii_lowercase())),
            None => return slow(s),
        }
    }
    out
}

fn slow(s: &str) -> String {
    s.nfkc().map(|c| simplify(c.to_ascii_lowercase())).collect()
}

/// The NFKC form of `c` when it is one character that NFKC maps without context: ASCII other
/// than controls that could start a sequence, CJK ideographs, full-width ASCII (U+FF01–FF5E), the
/// ideographic space and CJK punctuation without compatibility forms or combining marks.
fn fast_nfkc(c: char) -> Option<char> {
    match c {
        ' '..='~' | '\n' | '\t' | '\r' => Some(c),
        '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' => Some(c),
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0),
        '\u{3000}' => Some(' '),
        '\u{3001}'..='\u{3029}' | '\u{3030}'..='\u{3035}' | '\u{3037}' => Some(c),
        '\u{2014}' | '\u{2018}' | '\u{2019}' | '\u{201C}' | '\u{201D}' => Some(c),
        _ => None,
    }
}

/// A head count found in the text, with the words it came from (for the operator's reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeadCount {
    /// The lower bound of the count.
    pub(crate) count: u32,
    /// The phrase as written (normalised), e.g. `二十多名工人`.
    pub(crate) phrase: String,
}

/// Words that say "people" after a number; borrowed from the lexicon so staff can extend them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeopleWords<'a> {
    /// Measure words that imply people on their own: `名`, `位`, `户`.
    pub(crate) units: &'a [String],
    /// Nouns for people: `人`, `工人`, `村民` …
    pub(crate) nouns: &'a [String],
}

/// Numbers above this are not head counts (and keep the arithmetic far from overflow).
const MAX_COUNT: u64 = 100_000_000;

/// The largest head count in `text` (already normalised), if any.
pub(crate) fn max_head_count(text: &str, words: PeopleWords<'_>) -> Option<HeadCount> {
    let mut best: Option<HeadCount> = None;
    let mut rest = text;
    let mut prev: Option<char> = None;
    while let Some(c) = rest.chars().next() {
        if !is_numeral(c) {
            prev = Some(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let run_len: usize = rest
            .chars()
            .take_while(|&c| is_numeral(c))
            .map(char::len_utf8)
            .sum();
        let (run, after) = rest.split_at(run_len);
        let ordinal = matches!(prev, Some('第' | '前'));
        if !ordinal
            && let Some(value) = parse_number(run)
            && let Some(tail) = people_suffix(after, words)
        {
            let count = u32::try_from(value.min(MAX_COUNT)).unwrap_or(u32::MAX);
            if count > 0 && best.as_ref().is_none_or(|b| count > b.count) {
                let phrase = format!("{run}{}", &after[..tail]);
                best = Some(HeadCount { count, phrase });
            }
        }
        prev = run.chars().last();
        rest = after;
    }
    best
}

/// Characters that can be part of a number: ASCII digits and Chinese numerals.
fn is_numeral(c: char) -> bool {
    matches!(
        c,
        '0'..='9'
            | '零'
            | '〇'
            | '一'
            | '二'
            | '两'
            | '三'
            | '四'
            | '五'
            | '六'
            | '七'
            | '八'
            | '九'
            | '十'
            | '百'
            | '千'
            | '万'
            | '几'
            | '数'
    )
}

/// Value of a Chinese or Arabic numeral run, or `None` when it is not a number at all.
///
/// Consecutive Chinese digits are a range (`三五`, `七八十`): the first one is kept. Saturating
/// arithmetic throughout; the result is capped at [`MAX_COUNT`].
fn parse_number(run: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut section: u64 = 0;
    let mut digit: Option<u64> = None;
    let mut prev_ascii = false;
    let mut prev_chinese_digit = false;
    let mut any = false;
    for c in run.chars() {
        let ascii = c.is_ascii_digit();
        let chinese = chinese_digit(c);
        match (ascii, chinese, unit(c)) {
            (true, _, _) => {
                let d = u64::from(c as u8 - b'0');
                digit = Some(match digit {
                    Some(v) if prev_ascii => v.saturating_mul(10).saturating_add(d).min(MAX_COUNT),
                    _ => d,
                });
                any = true;
            }
            (false, Some(d), _) => {
                // A second Chinese digit right after one is a range: keep the first (lower bound).
                if !prev_chinese_digit {
                    digit = Some(d);
                }
                any = true;
            }
            (false, None, Some(10_000)) => {
                let v = section.saturating_add(digit.unwrap_or(if section == 0 { 1 } else { 0 }));
                total = total
                    .saturating_add(v.saturating_mul(10_000))
                    .min(MAX_COUNT);
                section = 0;
                digit = None;
                any = true;
            }
            (false, None, Some(u)) => {
                section = section
                    .saturating_add(digit.unwrap_or(1).saturating_mul(u))
                    .min(MAX_COUNT);
                digit = None;
                any = true;
            }
            // 零 and 〇 only separate (一百零五).
            (false, None, None) => {}
        }
        prev_ascii = ascii;
        prev_chinese_digit = chinese.is_some();
    }
    if !any {
        return None;
    }
    Some(
        total
            .saturating_add(section)
            .saturating_add(digit.unwrap_or(0))
            .min(MAX_COUNT),
    )
}

/// The value of a single Chinese digit; `几` and `数` (a few) read as 2, their lower bound.
fn chinese_digit(c: char) -> Option<u64> {
    Some(match c {
        '一' => 1,
        '二' | '两' | '几' | '数' => 2,
        '三' => 3,
        '四' => 4,
        '五' => 5,
        '六' => 6,
        '七' => 7,
        '八' => 8,
        '九' => 9,
        _ => return None,
    })
}

/// The multiplier of a Chinese unit character.
fn unit(c: char) -> Option<u64> {
    match c {
        '十' => Some(10),
        '百' => Some(100),
        '千' => Some(1_000),
        '万' => Some(10_000),
        _ => None,
    }
}

/// If `after` (the text right after a number) says "people", the byte length of that suffix.
fn people_suffix(after: &str, words: PeopleWords<'_>) -> Option<usize> {
    let mut pos = 0;
    // 多 / 余 / 来 (more than, about): the count stays a lower bound.
    if let Some(c) = after.chars().next()
        && matches!(c, '多' | '余' | '来')
    {
        pos += c.len_utf8();
    }
    if let Some(u) = words
        .units
        .iter()
        .find(|u| !u.is_empty() && after[pos..].starts_with(u.as_str()))
    {
        // A unit alone says people; a noun after it is part of the phrase.
        pos += u.len();
        return Some(pos + noun_len(&after[pos..], words).unwrap_or(0));
    }
    if after[pos..].starts_with('个') {
        pos += '个'.len_utf8();
    }
    noun_len(&after[pos..], words).map(|n| pos + n)
}

/// Byte length of the longest people noun at the start of `s`; `人民` (人民医院) is not people.
fn noun_len(s: &str, words: PeopleWords<'_>) -> Option<usize> {
    words
        .nouns
        .iter()
        .filter(|n| !n.is_empty() && s.starts_with(n.as_str()))
        .filter(|n| !(n.as_str() == "人" && s[n.len()..].starts_with('民')))
        .map(String::len)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words() -> (Vec<String>, Vec<String>) {
        let units = ["名", "位", "户"].map(String::from).to_vec();
        let nouns = ["人", "工人", "村民", "业主", "农民工"]
            .map(String::from)
            .to_vec();
        (units, nouns)
    }

    fn count(text: &str) -> Option<u32> {
        let (units, nouns) = words();
        let w = PeopleWords {
            units: &units,
            nouns: &nouns,
        };
        max_head_count(&normalize(text), w).map(|h| h.count)
    }

    proptest::proptest! {
        #[test]
        fn the_fast_path_equals_full_nfkc(s in "[\\PC\\u{3000}-\\u{303F}\\u{FF00}-\\u{FFEF}\\u{4E00}-\\u{4E40}a-zA-Z0-9 ，。！？]{0,40}") {
            let reference: String = s.nfkc().map(|c| simplify(c.to_ascii_lowercase())).collect();
            proptest::prop_assert_eq!(normalize(&s), reference);
        }

        #[test]
        fn normalising_twice_changes_nothing(s in "\\PC{0,60}") {
            let once = normalize(&s);
            proptest::prop_assert_eq!(normalize(&once), once.clone());
        }

        #[test]
        fn head_counts_never_panic(s in "[0-9一二三四五六七八九十百千万几多余来个名人第前]{0,30}") {
            let _ = count(&s);
        }
    }

    #[test]
    fn traditional_characters_become_simplified() {
        assert_eq!(normalize("離婚後的撫養權"), "离婚后的抚养权");
        assert_eq!(normalize("老闆拖欠工資，勞動仲裁"), "老板拖欠工资,劳动仲裁");
    }

    #[test]
    fn full_width_digits_and_letters_become_half_width_and_lower_case() {
        assert_eq!(normalize("３０人ＡＢＣ，？"), "30人abc,?");
        assert_eq!(normalize("　"), " ");
    }

    #[test]
    fn chinese_head_counts_read_as_lower_bounds() {
        assert_eq!(count("二十多名工人堵门"), Some(20));
        assert_eq!(count("三十余名村民"), Some(30));
        assert_eq!(count("来了几十个人"), Some(20));
        assert_eq!(count("上百人聚集"), Some(100));
        assert_eq!(count("十几个工人"), Some(12));
        assert_eq!(count("一百零五户"), Some(105));
        assert_eq!(count("三五个人"), Some(3));
        assert_eq!(count("七八十人"), Some(70));
        assert_eq!(count("两万人"), Some(20_000));
    }

    #[test]
    fn arabic_and_full_width_head_counts_are_read() {
        assert_eq!(count("30多名工人"), Some(30));
        assert_eq!(count("5人"), Some(5));
        assert_eq!(count("３０多名业主"), Some(30));
    }

    #[test]
    fn numbers_that_are_not_people_are_ignored() {
        assert_eq!(count("欠了3万元，拖了5个月"), None);
        assert_eq!(count("2017年3月"), None);
        assert_eq!(count("在第五人民医院"), None);
        assert_eq!(count("考了前十名"), None);
        assert_eq!(count("五人民币"), None);
        assert_eq!(count(""), None);
    }

    #[test]
    fn the_largest_count_in_the_text_wins() {
        assert_eq!(count("先是3人，后来二十多人"), Some(20));
    }

    #[test]
    fn absurd_numbers_saturate_instead_of_overflowing() {
        let huge = format!("{}人", "9".repeat(400));
        assert_eq!(count(&huge), Some(100_000_000));
        assert_eq!(count(&"万".repeat(50)), None);
        assert!(count(&format!("{}人", "万".repeat(50))).is_some());
    }
}
