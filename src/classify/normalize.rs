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

use super::t2s::{is_traditional, simplify};

/// CJK unified ideographs (the basic block and extension A): the characters tickets are written in.
pub(crate) fn is_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}')
}

/// NFKC (full-width letters, digits and punctuation become half-width), ASCII lower-case, and
/// traditional characters to simplified ([`super::t2s`]).
///
/// Most tickets are Chinese ideographs, ASCII and full-width punctuation, whose NFKC forms are
/// known without tables; those take a fast path of one pass. Any other character sends the
/// whole text through the full NFKC algorithm, so the result is always NFKC (property-tested).
pub(crate) fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    normalize_into(s, &mut out);
    out
}

/// [`normalize`] appended to `out`: the classifier writes title and text into one buffer
/// instead of allocating one string per field and a third to join them.
pub(crate) fn normalize_into(s: &str, out: &mut String) {
    let start = out.len();
    out.reserve(s.len());
    let slow = |out: &mut String| {
        out.truncate(start);
        out.extend(s.nfkc().map(|c| simplify(c.to_ascii_lowercase())));
    };
    // Most characters come out as they went in: such runs are copied whole, not pushed one by
    // one, and ASCII is handled a byte at a time.
    let bytes = s.as_bytes();
    let mut run = 0;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b < 0x80 {
            match b {
                b'A'..=b'Z' => {
                    out.push_str(&s[run..i]);
                    out.push(char::from(b.to_ascii_lowercase()));
                    run = i + 1;
                }
                b' '..=b'~' | b'\n' | b'\t' | b'\r' => {}
                _ => return slow(out),
            }
            i += 1;
            continue;
        }
        // The common case, U+4E00–U+9FFF (E4 B8 80 to E9 BF BF): NFKC and lower-casing leave
        // these ideographs alone, so only the traditional→simplified table is asked.
        if (0xE4..=0xE9).contains(&b)
            && let Some(&[b1, b2]) = bytes.get(i + 1..i + 3)
            && (b != 0xE4 || b1 >= 0xB8)
        {
            // A `str` is valid UTF-8: the two bytes after a lead byte are continuation bytes.
            let code =
                (u32::from(b & 0x0F) << 12) | (u32::from(b1 & 0x3F) << 6) | u32::from(b2 & 0x3F);
            if is_traditional(code)
                && let Some(c) = char::from_u32(code)
            {
                out.push_str(&s[run..i]);
                out.push(simplify(c));
                run = i + 3;
            }
            i += 3;
            continue;
        }
        let Some((c, len)) = char_at(s, i) else {
            return slow(out);
        };
        let Some(n) = fast_nfkc(c) else {
            return slow(out);
        };
        let n = simplify(n.to_ascii_lowercase());
        if n != c {
            out.push_str(&s[run..i]);
            out.push(n);
            run = i + len;
        }
        i += len;
    }
    out.push_str(&s[run..]);
}

/// The character starting at byte `i` of `s` and its length in bytes. Three-byte characters
/// (all of Chinese) are decoded by hand: `s[i..].chars()` re-checks the string's bounds and
/// boundary first, which costs more than the decoding itself in the classifier's loops.
#[inline]
pub(crate) fn char_at(s: &str, i: usize) -> Option<(char, usize)> {
    let (code, len) = code_at(s, i)?;
    char::from_u32(code).map(|c| (c, len))
}

/// [`char_at`] as a code point, for loops that only compare or hash it: a `str` is valid
/// UTF-8, so the code point needs no second check to be a `char`.
#[inline(always)]
pub(crate) fn code_at(s: &str, i: usize) -> Option<(u32, usize)> {
    let b = s.as_bytes();
    let b0 = *b.get(i)?;
    if b0 < 0x80 {
        return Some((u32::from(b0), 1));
    }
    if (0xE0..0xF0).contains(&b0)
        && let Some(&[b1, b2]) = b.get(i + 1..i + 3)
    {
        let code =
            (u32::from(b0 & 0x0F) << 12) | (u32::from(b1 & 0x3F) << 6) | u32::from(b2 & 0x3F);
        return Some((code, 3));
    }
    let c = s.get(i..)?.chars().next()?;
    Some((u32::from(c), c.len_utf8()))
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

/// Words that say "people" after a number, and the words that say they act together; borrowed
/// from the lexicon so staff can extend them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeopleWords<'a> {
    /// Measure words that imply people on their own: `名`, `位`.
    pub(crate) units: &'a [String],
    /// Nouns for people: `人`, `工人`, `村民` …
    pub(crate) nouns: &'a [String],
    /// Group-action words (`堵门`, `聚集`, `讨薪` …): when not empty, a head count only counts
    /// with one of them within `window` characters of it. Empty: every head count counts.
    pub(crate) actions: &'a [String],
    /// Characters either side of the head count searched for an action word.
    pub(crate) window: usize,
}

/// Numbers above this are not head counts (and keep the arithmetic far from overflow).
const MAX_COUNT: u64 = 100_000_000;

/// The largest head count of at least `min` people in `text` (already normalised), if any;
/// with [`PeopleWords::actions`], only counts of people acting together; by reading every
/// numeral run of the text. The classifier asks [`max_head_count_at`], which reads the same
/// runs found by its phrase matcher, and is tested against this.
#[cfg(test)]
pub(crate) fn max_head_count(text: &str, words: PeopleWords<'_>, min: u32) -> Option<HeadCount> {
    let mut best: Option<HeadCount> = None;
    let mut i = 0usize;
    while let Some((c, len)) = char_at(text, i) {
        if is_numeral(c) {
            i = read_count(text, i, words, min, &mut best);
        } else {
            i += len;
        }
    }
    best
}

/// The largest head count of at least `min` people in `text` (already normalised), if any;
/// with [`PeopleWords::actions`], only counts of people acting together. It reads the numeral
/// runs that start at or cover `numerals` (byte offsets of numeral characters, ascending):
/// the classifier's phrase matcher visits every character anyway and notes where the
/// numerals are ([`NUMERALS_LISTED`]), so the text is not walked again, which had cost a
/// twentieth of a ticket's time.
///
/// `min` is the lowest threshold that raises a level: smaller counts cannot matter, so their
/// surroundings are never searched.
pub(crate) fn max_head_count_at(
    text: &str,
    numerals: &[usize],
    words: PeopleWords<'_>,
    min: u32,
) -> Option<HeadCount> {
    let mut best: Option<HeadCount> = None;
    let mut next = 0;
    for &at in numerals {
        // Numerals inside a run already read are part of it.
        if at < next || !text.is_char_boundary(at) {
            continue;
        }
        next = read_count(text, at, words, min, &mut best);
    }
    best
}

/// Reads the numeral run starting at `start` (a numeral character), replaces `best` if it
/// counts more people acting together, and returns where the run ends.
fn read_count(
    text: &str,
    start: usize,
    words: PeopleWords<'_>,
    min: u32,
    best: &mut Option<HeadCount>,
) -> usize {
    let mut end = start;
    while let Some((c, len)) = char_at(text, end)
        && is_numeral(c)
    {
        end += len;
    }
    // The character before the number: 第五, 前十 are ranks, not counts.
    let prev = text[..start].chars().next_back();
    let (run, after) = (&text[start..end], &text[end..]);
    let ordinal = matches!(prev, Some('第' | '前'));
    if !ordinal && let Some(value) = parse_number(run) {
        let count = u32::try_from(value.min(MAX_COUNT)).unwrap_or(u32::MAX);
        // Cheapest test first: a count that could not matter is not read any further.
        if count > 0
            && count >= min
            && best.as_ref().is_none_or(|b| count > b.count)
            && let Some(tail) = people_suffix(after, words)
            && acting_together(text, start, end + tail, words)
        {
            *best = Some(HeadCount {
                count,
                phrase: text[start..end + tail].to_owned(),
            });
        }
    }
    end.max(start + 1)
}

/// The numeral characters, for the phrase matcher to find ([`max_head_count_at`]).
pub(crate) const NUMERALS_LISTED: &str = "0123456789零〇一二两三四五六七八九十百千万几数";

/// Byte length of the UTF-8 character whose first byte is `b0` (1 for a stray continuation
/// byte, which cannot occur in a `str` at a character boundary).
pub(crate) fn utf8_width(b0: u8) -> usize {
    match b0 {
        0xF0.. => 4,
        0xE0.. => 3,
        0xC0.. => 2,
        _ => 1,
    }
}

/// Whether a group-action word is within `words.window` characters of `text[start..end]`
/// and in the same sentence (always true when no action words are configured).
///
/// The same sentence, because a number and an action word in different sentences are not one
/// group acting ("二十多名。……堵门"), and so that a sentence added between them (a threat written
/// into a ticket) can never lower the level a group already gave (property-tested in
/// `classify::safety_tests`).
pub(crate) fn acting_together(
    text: &str,
    start: usize,
    end: usize,
    words: PeopleWords<'_>,
) -> bool {
    if words.actions.is_empty() {
        return true;
    }
    let is_end = |c: char| matches!(c, '。' | '!' | '?' | ';' | '\n');
    let from = text[..start]
        .char_indices()
        .rev()
        .find(|(_, c)| is_end(*c))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let to = text[end..]
        .char_indices()
        .find(|(_, c)| is_end(*c))
        .map_or(text.len(), |(i, _)| end + i);
    let sentence = &text[from..to];
    near_any(
        sentence,
        start - from,
        end - from,
        words.actions,
        words.window,
    )
}

/// Whether one of `words` occurs within `window` characters of `text[start..end]` (the
/// phrase itself included): the head-count reader and the vulnerable-party rule both ask it.
pub(crate) fn near_any(
    text: &str,
    start: usize,
    end: usize,
    words: &[String],
    window: usize,
) -> bool {
    let before = match window.checked_sub(1) {
        None => start,
        Some(k) => text[..start]
            .char_indices()
            .rev()
            .nth(k)
            .map_or(0, |(b, _)| b),
    };
    let after = text[end..]
        .char_indices()
        .nth(window)
        .map_or(text.len(), |(b, _)| end + b);
    let around = &text[before..after];
    words
        .iter()
        .any(|a| !a.is_empty() && around.contains(a.as_str()))
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
    if let Some(n) = noun_len(&after[pos..], words) {
        return Some(pos + n);
    }
    // A word or two describing the people may come first (二三十个外地工人, 十来个年轻人), but
    // not a unit of time, money or things (五个月工资, 十几块钱): those count no people.
    let mut skipped = pos;
    for c in after[pos..].chars().take(MAX_MODIFIER_CHARS) {
        if !is_han(c) || is_numeral(c) || NOT_PEOPLE_AFTER_COUNT.contains(c) {
            return None;
        }
        skipped += c.len_utf8();
        if let Some(n) = noun_len(&after[skipped..], words) {
            return Some(skipped + n);
        }
    }
    None
}

/// Characters a description of people may have between a count and its noun (外地 in
/// 二三十个外地工人).
const MAX_MODIFIER_CHARS: usize = 2;

/// Characters that, right after a count, say it counts something other than people present:
/// time, money, things, floors, ages, places and units (八点, 三县, 五组, 百姓).
const NOT_PEOPLE_AFTER_COUNT: &str = "月年天时星周日次回元块钱万岁层楼号件辆台套户间家栋点分秒县市区镇乡村省厂米亩斤里公平项所校班级组队批条张姓车";

/// Byte length of the longest people noun at the start of `s`. `人民` (人民医院), `人次` (visits,
/// 接待游客30万人次) and `人口` (population figures) are not people present.
fn noun_len(s: &str, words: PeopleWords<'_>) -> Option<usize> {
    words
        .nouns
        .iter()
        .filter(|n| !n.is_empty() && s.starts_with(n.as_str()))
        .filter(|n| !(n.as_str() == "人" && s[n.len()..].starts_with(['民', '次', '口'])))
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
            actions: &[],
            window: 0,
        };
        max_head_count(&normalize(text), w, 1).map(|h| h.count)
    }

    /// Head counts with group-action words required within 6 characters.
    fn acting(text: &str, min: u32) -> Option<HeadCount> {
        let (units, nouns) = words();
        let actions = ["堵门", "聚集", "讨薪", "吵"].map(String::from);
        let w = PeopleWords {
            units: &units,
            nouns: &nouns,
            actions: &actions,
            window: 6,
        };
        max_head_count(&normalize(text), w, min)
    }

    proptest::proptest! {
        #[test]
        fn reading_at_the_numerals_equals_reading_the_whole_text(
            s in "[0-9一二十百多名人堵门聚集吵讨薪第前个工a-z ，。🤔]{0,40}",
            min in 1u32..30,
        ) {
            let (units, nouns) = words();
            let actions = ["堵门", "聚集", "讨薪", "吵"].map(String::from);
            for actions in [&actions[..], &[]] {
                let w = PeopleWords { units: &units, nouns: &nouns, actions, window: 6 };
                let at: Vec<usize> = s
                    .char_indices()
                    .filter(|(_, c)| is_numeral(*c))
                    .map(|(i, _)| i)
                    .collect();
                proptest::prop_assert_eq!(max_head_count_at(&s, &at, w, min), max_head_count(&s, w, min));
            }
        }
    }

    #[test]
    fn the_listed_numerals_are_the_numerals() {
        let mut listed: Vec<char> = NUMERALS_LISTED.chars().collect();
        listed.sort_unstable();
        let all: Vec<char> = ('\0'..=char::MAX).filter(|c| is_numeral(*c)).collect();
        assert_eq!(listed, all);
    }

    #[test]
    fn a_word_or_two_may_describe_the_people_but_not_a_time_or_money() {
        assert_eq!(acting("二三十个外地工人堵门", 1).map(|h| h.count), Some(20));
        assert_eq!(acting("十来个本地工人在讨薪", 1).map(|h| h.count), Some(10));
        // Three describing characters are too many; time, money and things count no people.
        assert_eq!(acting("十几个很年轻工人堵门", 1), None);
        assert_eq!(acting("五个月工人讨薪", 1), None);
        assert_eq!(acting("十几块钱工人讨薪", 1), None);
        assert_eq!(acting("老百姓村民堵门", 1), None);
        assert_eq!(acting("晚上八点工人吵", 1), None);
    }

    #[test]
    fn with_action_words_only_people_acting_together_count() {
        assert_eq!(acting("二十多名工人堵门", 1).map(|h| h.count), Some(20));
        // The action word may come first, within the window.
        assert_eq!(
            acting("在门口聚集了三十余名村民", 1).map(|h| h.count),
            Some(30)
        );
        // A head count with no action nearby: a figure, not a crowd.
        assert_eq!(acting("小区有800多人，物业费太贵", 1), None);
        // Too far away: more than 6 characters between.
        assert_eq!(acting("小区有800多人，物业费太贵了，大家吵", 1), None);
        // The smaller count acts, the larger does not: the smaller one is the head count.
        let h = acting("全村2000人，其中30多人去堵门", 1).unwrap();
        assert_eq!((h.count, h.phrase.as_str()), (30, "30多人"));
        // Below `min` nothing is searched.
        assert_eq!(acting("3人吵起来", 5), None);
        assert_eq!(acting("6人吵起来", 5).map(|h| h.count), Some(6));
    }

    #[test]
    fn visits_and_population_figures_are_not_people_present() {
        assert_eq!(count("接待游客30多万人次"), None);
        assert_eq!(count("自然村28人口"), None);
    }

    proptest::proptest! {
        #[test]
        fn action_windows_never_panic(s in "[0-9一二十百多名人堵门聚集吵讨薪a-z ，。🤔]{0,40}") {
            let _ = acting(&s, 1);
        }
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
        fn appending_equals_normalising_alone(prefix in "\\PC{0,10}", s in "\\PC{0,40}") {
            // The slow path must drop only what this call appended, never the prefix.
            let mut out = prefix.clone();
            normalize_into(&s, &mut out);
            proptest::prop_assert_eq!(out, format!("{prefix}{}", normalize(&s)));
        }

        #[test]
        fn decoding_by_hand_equals_chars(s in "\\PC{0,40}") {
            let by_hand: Vec<(usize, char)> = {
                let mut v = Vec::new();
                let mut i = 0;
                while let Some((c, len)) = char_at(&s, i) {
                    v.push((i, c));
                    i += len;
                }
                v
            };
            proptest::prop_assert_eq!(by_hand, s.char_indices().collect::<Vec<_>>());
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
