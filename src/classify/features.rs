//! Character n-gram features for the linear model: the same code at training and at run time,
//! so a model file and the gateway always see a ticket the same way.
//!
//! Why character n-grams and not words: Chinese has no spaces, and a word segmenter (jieba)
//! costs a dictionary load (hundreds of milliseconds, tens of megabytes) and more time per
//! ticket than the whole rest of the classifier. Unigrams and bigrams of characters catch the
//! words that matter (欠薪, 离婚, 调解) and their neighbours, cost one hash each, and need no
//! dictionary. The lexicon still reads whole phrases.
//!
//! The feature stream, from the normalised text ([`super::normalize::normalize`]):
//! - Chinese ideographs and ASCII letters are kept; every ASCII digit becomes `0`, so amounts and
//!   dates do not split the vocabulary;
//! - a few particles (的 了 吗 呢 吧 啊 …) are dropped and their neighbours joined: the government
//!   message board the out-of-scope examples come from had them removed already, and a model that
//!   learnt "的 means a dispute" would fail on real 12345 text;
//! - anything else (punctuation, spaces, emoji, other scripts) ends a run: no n-gram spans it.
//!
//! Each distinct n-gram counts once per ticket, and the feature values are scaled by
//! `1/sqrt(number of distinct n-grams)`, so a long narrative is not more certain than a short
//! question merely for being long.

/// Particles dropped from the feature stream (see the module documentation).
const DROPPED: &[char] = &[
    '的', '了', '吗', '呢', '吧', '啊', '呀', '哦', '嘛', '哈', '嗯', '呃', '啦', '哎',
];

/// What a normalised character is to the feature stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Kept as this character.
    Keep(char),
    /// Dropped without ending the run.
    Skip,
    /// Ends the run.
    Break,
}

fn class_of(c: char) -> Class {
    if c.is_ascii_digit() {
        Class::Keep('0')
    } else if c.is_ascii_lowercase() {
        Class::Keep(c)
    } else if is_han(c) {
        if DROPPED.contains(&c) {
            Class::Skip
        } else {
            Class::Keep(c)
        }
    } else {
        Class::Break
    }
}

/// CJK unified ideographs (the basic block and extension A): the characters tickets are written in.
pub(crate) fn is_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}')
}

/// One n-gram of a ticket: its hash bucket and where it is in the text (for reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gram {
    /// `hash % buckets`.
    pub(crate) bucket: u32,
    /// Byte range in the normalised text, first to last character (dropped ones included).
    pub(crate) start: usize,
    /// End of the byte range.
    pub(crate) end: usize,
}

/// FNV-1a over the n-gram's characters and its length: stable across Rust versions and
/// platforms, which the shipped model files depend on (std's hasher is not).
fn fnv(chars: &[char]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    // chars.len() is 1..=3, so the cast is exact.
    eat(chars.len() as u8);
    for c in chars {
        for b in (*c as u32).to_le_bytes() {
            eat(b);
        }
    }
    h
}

/// Every n-gram (1..=`max_n`, at most 3) of `text` in text order, hashed into `buckets`,
/// repeats included: callers count each bucket once, and use the total length
/// to scale the feature values (see the module documentation).
///
/// `text` must already be normalised.
pub(crate) fn grams(text: &str, max_n: usize, buckets: u32) -> Vec<Gram> {
    let mut out: Vec<Gram> = Vec::with_capacity(text.len() / 2 + 1);
    for_each_gram(text, max_n, buckets, |g| out.push(g));
    out
}

/// [`grams`] without collecting them: calls `f` for each n-gram in text order.
pub(crate) fn for_each_gram(text: &str, max_n: usize, buckets: u32, mut f: impl FnMut(Gram)) {
    let max_n = max_n.clamp(1, 3);
    let buckets = u64::from(buckets.max(1));
    // The last `max_n` kept characters of the current run, with their start offsets.
    let mut window: [(char, usize); 3] = [('\0', 0); 3];
    let mut run = 0usize;
    for (pos, c) in text.char_indices() {
        let kept = match class_of(c) {
            Class::Keep(k) => k,
            Class::Skip => continue,
            Class::Break => {
                run = 0;
                continue;
            }
        };
        window.rotate_left(1);
        window[2] = (kept, pos);
        run += 1;
        let end = pos + c.len_utf8();
        for n in 1..=max_n.min(run) {
            let slice = &window[3 - n..];
            let mut chars = ['\0'; 3];
            for (i, (ch, _)) in slice.iter().enumerate() {
                chars[i] = *ch;
            }
            // The modulus keeps the value below `buckets`, a u32.
            let bucket = (fnv(&chars[..n]) % buckets) as u32;
            f(Gram {
                bucket,
                start: slice[0].1,
                end,
            });
        }
    }
}

/// The distinct buckets of `grams`, sorted.
pub(crate) fn distinct_buckets(grams: &[Gram]) -> Vec<u32> {
    let mut b: Vec<u32> = grams.iter().map(|g| g.bucket).collect();
    b.sort_unstable();
    b.dedup();
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(text: &str, n: usize) -> usize {
        distinct_buckets(&grams(text, n, 1 << 20)).len()
    }

    #[test]
    fn unigrams_and_bigrams_of_a_run() {
        // 拖 欠 工 资: 4 unigrams + 3 bigrams.
        assert_eq!(count("拖欠工资", 2), 7);
        // + 2 trigrams.
        assert_eq!(count("拖欠工资", 3), 9);
    }

    #[test]
    fn punctuation_breaks_runs_and_particles_are_skipped() {
        // 欠薪 | 欠薪: the same grams twice count once.
        assert_eq!(count("欠薪，欠薪", 2), 3);
        // 的 is dropped and 我 家 join: 我, 家, 我家.
        assert_eq!(count("我的家", 2), 3);
        assert_eq!(count("！？🤔  ...", 3), 0);
        assert_eq!(count("", 3), 0);
    }

    #[test]
    fn digits_collapse() {
        let a: Vec<u32> = grams("3万", 2, 1 << 20).iter().map(|g| g.bucket).collect();
        let b: Vec<u32> = grams("9万", 2, 1 << 20).iter().map(|g| g.bucket).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn positions_point_into_the_text() {
        let text = "他说：拖欠工资";
        for g in grams(text, 3, 1 << 20) {
            assert!(text.get(g.start..g.end).is_some_and(|s| !s.is_empty()));
        }
    }

    #[test]
    fn hashes_are_stable_across_builds() {
        // The shipped model depends on these exact values.
        assert_eq!(fnv(&['欠']), fnv(&['欠']));
        assert_eq!(fnv(&['a']) % 1_000_003, 460_955);
    }
}
