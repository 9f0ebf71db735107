//! Traditional → simplified characters, by OpenCC's character table (`TSCharacters.txt`,
//! Apache-2.0, shipped in `data/opencc/` with its licence and origin), so a ticket typed in
//! traditional characters (Hong Kong, Taiwan, older callers' phones) matches the lexicon and the
//! model like its simplified form.
//!
//! The table is turned into static arrays by `build.rs` at build time. Most characters of most
//! tickets are simplified already, so the common case stays one bit test per ideograph of
//! U+4E00–U+9FFF ([`is_traditional`]); a traditional character then costs one rank (a prefix
//! count per 64-bit word and a `popcnt`) and one load. Characters outside that block (extension
//! A, supplementary planes) are looked up by a binary search, on the path that is already slow.
//!
//! Why not a crate: the maintained crates that ship OpenCC's tables convert whole phrases with
//! dictionaries of their own (megabytes, a segmenter, allocation per text) or are GPL (`zhconv`),
//! and `fast2s` is unmaintained; one character at a time is enough here (words whose simplified
//! form depends on context, 乾/干 or 著/着, are rare in tickets, and a miss only costs a lexicon
//! hit), so the table is all that is needed.

include!(concat!(env!("OUT_DIR"), "/t2s_table.rs"));

/// First and last code point of the table's fast block (the CJK unified ideographs).
const LO: u32 = 0x4E00;

/// The simplified form of `c` by OpenCC's table, or `c` itself.
#[inline]
pub(crate) fn simplify(c: char) -> char {
    let code = c as u32;
    if is_traditional(code) {
        let i = code - LO;
        let (w, b) = ((i / 64) as usize, i % 64);
        // `is_traditional` found the word, so these indexes exist; `c` stays as it is otherwise.
        let below = MAIN_BITS
            .get(w)
            .map_or(0, |word| (word & ((1u64 << b) - 1)).count_ones());
        let rank = MAIN_RANK.get(w).map_or(0, |r| usize::from(*r)) + below as usize;
        return MAIN_VALUES.get(rank).copied().unwrap_or(c);
    }
    if code < 0x3400 || (LO..=0x9FFF).contains(&code) {
        return c;
    }
    match OTHER.binary_search_by_key(&c, |(k, _)| *k) {
        Ok(i) => OTHER[i].1,
        Err(_) => c,
    }
}

/// Whether the code point `code` of the block U+4E00–U+9FFF is a traditional character the
/// table maps: one bit test, for every ideograph of every ticket.
#[inline(always)]
pub(crate) fn is_traditional(code: u32) -> bool {
    let i = code.wrapping_sub(LO);
    MAIN_BITS
        .get((i / 64) as usize)
        .is_some_and(|w| w >> (i % 64) & 1 == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENCC: &str = include_str!("../../data/opencc/TSCharacters.txt");

    /// Every `(key, first candidate)` of OpenCC's table.
    fn table() -> Vec<(char, char)> {
        OPENCC
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let (k, v) = l.split_once('\t').unwrap();
                let first = v.split(' ').find(|x| !x.is_empty()).unwrap();
                (k.chars().next().unwrap(), first.chars().next().unwrap())
            })
            .collect()
    }

    #[test]
    fn every_character_of_the_opencc_table_converts() {
        let table = table();
        assert!(table.len() > 4_000, "{}", table.len());
        let mut changed = 0;
        for (k, v) in &table {
            assert_eq!(simplify(*k), *v, "{k} (U+{:04X})", *k as u32);
            if k != v {
                changed += 1;
            }
        }
        // The old hand-written table had 326 characters.
        assert!(changed > 3_000, "{changed}");
    }

    #[test]
    fn the_characters_the_old_table_missed_convert() {
        let traditional = "佔傭嚇寵揚斷棄歸終繫聯脅視討負賃輕辭違騷";
        let simplified = "占佣吓宠扬断弃归终系联胁视讨负赁轻辞违骚";
        let got: String = traditional.chars().map(simplify).collect();
        assert_eq!(got, simplified);
    }

    #[test]
    fn simplified_and_other_characters_stay_as_they_are() {
        for c in "老公家暴我想离婚他威胁我说要轻生，。abc123🤔　".chars() {
            assert_eq!(simplify(c), c, "{c}");
        }
    }

    #[test]
    fn the_bit_set_agrees_with_the_conversion() {
        for code in 0x4E00..=0x9FFF_u32 {
            let c = char::from_u32(code).unwrap();
            assert_eq!(is_traditional(code), simplify(c) != c, "U+{code:04X}");
        }
    }
}
