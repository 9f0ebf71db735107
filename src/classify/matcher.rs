//! Finding every lexicon phrase in a ticket: every occurrence of every phrase, overlapping ones
//! included (拖欠工资 and 工资 both count), with where it starts and ends.
//!
//! Why not an Aho-Corasick automaton (the `aho-corasick` crate, used before): over the lexicon's
//! Chinese phrases the automaton walks three bytes per character through a table that does not
//! fit in the CPU's caches. The full DFA missed the cache on most bytes (a sixth of a ticket's
//! time for a few thousand instructions), and the compact NFA spent 45,000 instructions a ticket
//! on failure transitions. Lexicon phrases are short and start with a recognisable pair of
//! characters, so this matcher keeps one bit per hashed pair of characters (8 KiB, in the L1
//! cache) and one per single-character phrase; a ticket's characters are decoded once, each
//! adjacent pair tests one bit, and only the pairs that start some phrase are looked up and the
//! rest of the phrase compared. The result is the same set of matches (property-tested against
//! a plain search, and field by field on 9,068 texts), and per ticket it measured 4–5 µs less
//! than the NFA (BENCHMARKS.md).

use super::normalize::code_at;

/// Bits in each filter: 65,536 bits is 8 KiB.
const FILTER_BITS: u32 = 16;
/// Words of a filter.
const FILTER_WORDS: usize = (1 << FILTER_BITS) / 64;
/// Groups of phrases by slot: 4,096 starts, 16 KiB.
const GROUP_BITS: u32 = 12;

/// Every phrase of a lexicon, ready to be searched for.
#[derive(Debug, Clone)]
pub(crate) struct PhraseSet {
    /// The phrases as given (normalised text), by id.
    phrases: Vec<String>,
    /// Bytes of each phrase's first two characters (of its only one, for one-character
    /// phrases): a candidate already matched those, so only the rest is compared, and most
    /// phrases are two characters long.
    prefix: Vec<usize>,
    /// One bit per hashed (first, second) character pair that starts a phrase of two or more
    /// characters. Fixed-size, like `single_filter`: a slot is below 2¹⁶ by construction, so
    /// testing a bit needs no bounds check, twice per character.
    pair_filter: Box<[u64; FILTER_WORDS]>,
    /// Every phrase as (key, id): [`pair_key`] of its first two characters, or
    /// [`single_key`] of its only one; grouped by the top [`GROUP_BITS`] of the key's slot.
    by_key: Vec<(u64, u32)>,
    /// Where each group of `by_key` starts (one more entry than groups): the candidates of a
    /// key are found with two reads instead of a binary search. Real tickets hit a phrase's
    /// start on about one character in five, so this look-up is not rare.
    groups: Vec<u32>,
    /// One bit per hashed character that is a whole phrase by itself (the head-count reader's
    /// numerals among them).
    single_filter: Box<[u64; FILTER_WORDS]>,
}

/// The key of two adjacent characters.
#[inline(always)]
fn pair_key(first: u32, second: u32) -> u64 {
    (u64::from(first) << 32) | u64::from(second)
}

/// The key of a one-character phrase, never equal to a pair's (characters are below 2²¹, so a
/// pair key is below 2⁵³).
#[inline(always)]
fn single_key(c: u32) -> u64 {
    (1 << 63) | u64::from(c)
}

/// A filter bit of `key`: the top bits of a multiplicative hash.
#[inline(always)]
fn slot(key: u64) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - FILTER_BITS)) as usize
}

#[inline(always)]
fn test(filter: &[u64; FILTER_WORDS], slot: usize) -> bool {
    filter[(slot / 64) % FILTER_WORDS] >> (slot % 64) & 1 == 1
}

fn set(filter: &mut [u64; FILTER_WORDS], slot: usize) {
    filter[(slot / 64) % FILTER_WORDS] |= 1 << (slot % 64);
}

impl PhraseSet {
    /// Prepares `phrases` (ids are their positions). Empty phrases never match.
    pub(crate) fn new(phrases: Vec<String>) -> PhraseSet {
        let mut set_of = PhraseSet {
            phrases: Vec::new(),
            prefix: Vec::new(),
            pair_filter: Box::new([0; FILTER_WORDS]),
            by_key: Vec::new(),
            groups: Vec::new(),
            single_filter: Box::new([0; FILTER_WORDS]),
        };
        for (id, p) in phrases.iter().enumerate() {
            // Phrase ids fit in u32: a lexicon has thousands.
            let id = id as u32;
            let mut chars = p.chars().map(u32::from);
            match (chars.next(), chars.next()) {
                (Some(a), Some(b)) => {
                    let key = pair_key(a, b);
                    set(&mut set_of.pair_filter, slot(key));
                    set_of.by_key.push((key, id));
                }
                (Some(a), None) => {
                    let key = single_key(a);
                    set(&mut set_of.single_filter, slot(key));
                    set_of.by_key.push((key, id));
                }
                _ => {}
            }
        }
        let group = |key: u64| slot(key) >> (FILTER_BITS - GROUP_BITS);
        set_of
            .by_key
            .sort_unstable_by_key(|(key, id)| (group(*key), *key, *id));
        let mut groups = Vec::with_capacity((1 << GROUP_BITS) + 1);
        let mut at = 0usize;
        for g in 0..(1usize << GROUP_BITS) {
            // Fewer than 2³² phrases.
            groups.push(at as u32);
            while set_of.by_key.get(at).is_some_and(|(k, _)| group(*k) == g) {
                at += 1;
            }
        }
        groups.push(at as u32);
        set_of.groups = groups;
        set_of.prefix = phrases
            .iter()
            .map(|p| p.char_indices().nth(2).map_or(p.len(), |(i, _)| i))
            .collect();
        set_of.phrases = phrases;
        set_of
    }

    /// Calls `found(id, start, end)` for every occurrence of every phrase in `text` (byte
    /// offsets), in order of `start`.
    #[inline]
    pub(crate) fn for_each_match(&self, text: &str, mut found: impl FnMut(usize, usize, usize)) {
        let bytes = text.as_bytes();
        let mut previous: Option<(u32, usize)> = None;
        let mut i = 0usize;
        while let Some((c, len)) = code_at(text, i) {
            if let Some((p, start)) = previous {
                let key = pair_key(p, c);
                let at = slot(key);
                if test(&self.pair_filter, at) {
                    self.check(at, key, bytes, start, &mut found);
                }
                self.single(p, bytes, start, &mut found);
            }
            previous = Some((c, i));
            i += len;
        }
        if let Some((p, start)) = previous {
            self.single(p, bytes, start, &mut found);
        }
    }

    /// The one-character phrase `c` at `start`, if there is one.
    #[inline(always)]
    fn single(
        &self,
        c: u32,
        bytes: &[u8],
        start: usize,
        found: &mut impl FnMut(usize, usize, usize),
    ) {
        let key = single_key(c);
        let at = slot(key);
        if test(&self.single_filter, at) {
            self.check(at, key, bytes, start, found);
        }
    }

    /// Checks the phrases under `key` (whose filter slot is `at`) against the text at `start`.
    #[inline(always)]
    fn check(
        &self,
        at: usize,
        key: u64,
        bytes: &[u8],
        start: usize,
        found: &mut impl FnMut(usize, usize, usize),
    ) {
        let g = at >> (FILTER_BITS - GROUP_BITS);
        let (Some(&from), Some(&to)) = (self.groups.get(g), self.groups.get(g + 1)) else {
            return;
        };
        let list = self
            .by_key
            .get(from as usize..to as usize)
            .unwrap_or_default();
        for (_, id) in list.iter().filter(|(k, _)| *k == key) {
            let id = *id as usize;
            let (Some(p), Some(&skip)) = (self.phrases.get(id), self.prefix.get(id)) else {
                continue;
            };
            let (tail, end) = (
                p.as_bytes().get(skip..).unwrap_or_default(),
                start + p.len(),
            );
            // The first byte settles most mismatches without calling `memcmp`.
            let rest = bytes.get(start + skip..end);
            if tail.is_empty() || rest.is_some_and(|r| r.first() == tail.first() && r == tail) {
                found(id, start, end);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every occurrence by brute force: each phrase at each character boundary.
    fn plain(phrases: &[String], text: &str) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        for (start, _) in text.char_indices() {
            for (id, p) in phrases.iter().enumerate() {
                if !p.is_empty() && text[start..].starts_with(p.as_str()) {
                    out.push((id, start, start + p.len()));
                }
            }
        }
        out.sort_unstable();
        out
    }

    fn fast(set: &PhraseSet, text: &str) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        set.for_each_match(text, |id, s, e| out.push((id, s, e)));
        out.sort_unstable();
        out
    }

    #[test]
    fn overlapping_and_nested_phrases_all_count() {
        let phrases: Vec<String> = ["拖欠工资", "工资", "欠", "?", "刀削面", "刀", ""]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let set = PhraseSet::new(phrases.clone());
        let text = "老板拖欠工资?他拿刀，刀削面";
        let got = fast(&set, text);
        assert_eq!(got, plain(&phrases, text));
        assert_eq!(got.iter().filter(|m| m.0 == 5).count(), 2);
        assert!(fast(&set, "").is_empty());
    }

    proptest::proptest! {
        #[test]
        fn finds_exactly_what_a_plain_search_finds(
            phrases in proptest::collection::vec("[甲乙丙丁a?的]{0,4}", 0..30),
            text in "[甲乙丙丁戊a?的😀é ]{0,40}",
        ) {
            let set = PhraseSet::new(phrases.clone());
            proptest::prop_assert_eq!(fast(&set, &text), plain(&phrases, &text));
        }
    }
}
