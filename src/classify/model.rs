//! The statistical model: two multinomial logistic regressions (service, category) over hashed
//! character n-grams ([`super::features`]), trained offline by `hotline-gateway train` and
//! shipped as a versioned file under `models/`.
//!
//! Why logistic regression: it is small (one row of weights per n-gram), fast (one table look-up
//! per n-gram), explains itself (the n-grams with the largest weights for the chosen class are
//! the reasons), and its probabilities are better calibrated than naive Bayes, which matters
//! because confidence decides what goes to a human. It is written here (about two hundred
//! lines) rather than taken from a crate: the crates that do it pull in linear-algebra stacks
//! far larger than the model.
//!
//! File format (`HLMODEL1`): a first line `HLMODEL1`, a second line of JSON ([`Header`]), then
//! little-endian binary: `rows: u32`, `rows` buckets (`u32`, ascending), then `rows × classes`
//! weights as `i16`, multiplied by `header.scale` when read. Classes are the services then the
//! categories. Only n-grams seen in training have rows; every other n-gram weighs nothing.

use serde::{Deserialize, Serialize};

use super::features::{Gram, distinct_buckets, grams, scan_grams, scan_grams_65536};

/// The services the model scores, in this order (triage is never a label).
pub const MODEL_SERVICES: [&str; 3] = ["legal_consultation", "mediation", "out_of_scope"];

/// Magic first line of a model file.
const MAGIC: &str = "HLMODEL1";

/// The JSON header line of a model file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Recorded in every decision (`model`), e.g. `ngram-lr-2026.12-2`.
    pub version: String,
    /// Hash buckets: n-grams are hashed modulo this.
    pub buckets: u32,
    /// Longest n-gram, 1 to 3.
    pub max_n: usize,
    /// Category names, in weight-column order after the three services.
    pub categories: Vec<String>,
    /// Multiplier from stored `i16` to weight.
    pub scale: f32,
    /// Biases: three services, then the categories.
    pub bias: Vec<f32>,
    /// What it was trained on, for the record (files and row counts).
    #[serde(default)]
    pub trained_on: Vec<String>,
}

/// A loaded model: immutable, shared by every request.
#[derive(Debug, Clone)]
pub struct LinearModel {
    header: Header,
    /// Sorted buckets that have a row.
    buckets: Vec<u32>,
    /// Which buckets have a row, a bit each: 8 KiB for 65,536 buckets, which stays in the L1
    /// cache, so the most n-grams of a ticket, unknown to the model, cost one cached read.
    present: Vec<u64>,
    /// Bucket → row (`u32::MAX` for none), read only for buckets `present` says have one.
    index: Vec<u32>,
    /// Each word of `present` with the number of rows before it: with a `popcnt` of the word, a
    /// bucket's row without reading `index` (see [`LinearModel::known_grams`]); the two side by
    /// side, so one read fetches both.
    ranked: Vec<(u64, u32)>,
    /// `buckets.len() × classes` weights as stored (`i16`, times `header.scale`): small enough
    /// to stay in the CPU cache, which is what makes a ticket cost microseconds.
    weights: Vec<i16>,
    classes: usize,
    /// Per row: the sum of its service weights and of its category weights, so that explaining
    /// a decision ([`LinearModel::evidence_for`]) does not add up a row per known n-gram again.
    head_sums: Vec<[i32; 2]>,
    /// The weights again, each row padded with zeros to `stride` (a multiple of [`LANES`]) so
    /// that adding a row up is a few vector additions: summing rows is most of the model's cost.
    padded: Vec<i16>,
    stride: usize,
    /// The CPU's AVX2, if it has it, for summing rows ([`RowSumAvx2`]).
    #[cfg(target_arch = "x86_64")]
    avx2: Option<pulp::x86::V3>,
}

/// Weights added at once when summing rows (eight `i32` lanes: two SSE registers).
const LANES: usize = 8;

/// The model's view of one ticket. Not `Clone`: it holds a per-thread buffer that goes back
/// when it is dropped, and a copy would be tens of kilobytes.
#[derive(Debug)]
pub(crate) struct Scores {
    /// Log-probabilities of [`MODEL_SERVICES`].
    pub(crate) service_logp: [f64; 3],
    /// Probabilities of `header.categories`.
    pub(crate) category_p: Vec<f64>,
    /// Number of n-grams the model knew (0: the model has nothing to say).
    pub(crate) known: usize,
    /// The known n-grams with their rows, for explaining a class afterwards, as [`Found`]
    /// left them in a per-thread buffer lent to the scores (see `Drop`): the first `longer`
    /// entries are those of two or three characters.
    rows: Vec<Known>,
    longer: usize,
}

/// The buffer of known n-grams goes back to the thread that lent it, so the next ticket
/// neither allocates nor fills tens of kilobytes, and they are not copied out.
impl Drop for Scores {
    fn drop(&mut self) {
        let rows = std::mem::take(&mut self.rows);
        // During thread teardown, or while the buffers are in use: the buffer is just freed.
        let _ = SCRATCH.try_with(|cell| {
            if let Ok(mut scratch) = cell.try_borrow_mut()
                && scratch.found.len() < rows.len()
            {
                scratch.found = rows;
            }
        });
    }
}

/// One known n-gram of a ticket: its model row and where it is in the text. Twelve bytes, so
/// the thousand or so of a long ticket stay in the cache between scoring and explaining.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Known {
    /// Row in the weights.
    row: u32,
    /// Byte range in the normalised text.
    start: u32,
    end: u32,
}

impl Known {
    /// The n-gram as a [`Gram`] (for quoting it).
    pub(crate) fn gram(&self) -> Gram {
        Gram {
            bucket: 0,
            start: self.start as usize,
            end: self.end as usize,
        }
    }
}

/// Why a model file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Reading or writing the file failed.
    #[error("model file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a model of this format.
    #[error("model file {path}: {message}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl LinearModel {
    /// Reads a model file; errors name the file and what is wrong with it.
    pub fn load(path: &std::path::Path) -> Result<LinearModel, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
            path: path.display().to_string(),
            source,
        })?;
        LinearModel::from_bytes(&bytes).map_err(|message| ModelError::Format {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses the bytes of a model file.
    pub fn from_bytes(bytes: &[u8]) -> Result<LinearModel, String> {
        let line = |from: usize| -> Result<(&[u8], usize), String> {
            let rest = bytes.get(from..).ok_or("truncated")?;
            let n = rest
                .iter()
                .position(|b| *b == b'\n')
                .ok_or("missing header line")?;
            Ok((&rest[..n], from + n + 1))
        };
        let (magic, pos) = line(0)?;
        if magic != MAGIC.as_bytes() {
            return Err(format!("not a {MAGIC} model file"));
        }
        let (json, mut pos) = line(pos)?;
        let header: Header =
            serde_json::from_slice(json).map_err(|e| format!("bad header: {e}"))?;
        if !(1..=3).contains(&header.max_n) || header.buckets == 0 {
            return Err("header: max_n must be 1..=3 and buckets positive".into());
        }
        let classes = MODEL_SERVICES.len() + header.categories.len();
        if header.bias.len() != classes || !header.scale.is_finite() {
            return Err("header: bias must have one value per class".into());
        }
        let mut take = |n: usize| -> Result<&[u8], String> {
            let s = bytes.get(pos..pos + n).ok_or("truncated weights")?;
            pos += n;
            Ok(s)
        };
        let rows = u32_le(take(4)?) as usize;
        let mut buckets = Vec::with_capacity(rows);
        for chunk in take(rows.checked_mul(4).ok_or("too many rows")?)?.chunks_exact(4) {
            buckets.push(u32_le(chunk));
        }
        if buckets.windows(2).any(|w| w[0] >= w[1]) {
            return Err("buckets are not strictly ascending".into());
        }
        let n = rows.checked_mul(classes).ok_or("too many weights")?;
        let raw = take(n.checked_mul(2).ok_or("too many weights")?)?;
        let weights: Vec<i16> = raw
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        if pos != bytes.len() {
            return Err("trailing bytes after the weights".into());
        }
        if buckets.last().is_some_and(|b| *b >= header.buckets) {
            return Err("a bucket is out of range".into());
        }
        let mut index = vec![u32::MAX; header.buckets as usize];
        for (row, b) in buckets.iter().enumerate() {
            // rows came from a u32 count.
            index[*b as usize] = row as u32;
        }
        let present = presence(&buckets, header.buckets);
        let ranked = present.iter().copied().zip(ranks(&present)).collect();
        let head_sums = head_sums(&weights, classes);
        let (padded, stride) = padded(&weights, classes);
        Ok(LinearModel {
            header,
            buckets,
            present,
            index,
            ranked,
            weights,
            classes,
            head_sums,
            padded,
            stride,
            #[cfg(target_arch = "x86_64")]
            avx2: pulp::x86::V3::try_new(),
        })
    }

    /// The bytes of a model file (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let header = &self.header;
        out.extend_from_slice(MAGIC.as_bytes());
        out.push(b'\n');
        // A header of plain strings and numbers always serialises.
        out.extend_from_slice(serde_json::to_string(header).unwrap_or_default().as_bytes());
        out.push(b'\n');
        let rows = u32::try_from(self.buckets.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&rows.to_le_bytes());
        for b in &self.buckets {
            out.extend_from_slice(&b.to_le_bytes());
        }
        for w in &self.weights {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// The model's version string, recorded in decisions.
    pub fn version(&self) -> &str {
        &self.header.version
    }

    /// The header (categories, n-gram settings, provenance).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The known n-grams of `text`, each row once at its first occurrence, written to
    /// `found` with where they are (see [`Found`]; it must have room for every n-gram of the
    /// text: three per byte is plenty); returns the number of n-grams (repeats included).
    ///
    /// `RANKED` finds a bucket's row from the presence bits and ranks (`ranked`, 16 KiB,
    /// in the L1 cache) with a `popcnt`, and is only chosen where the CPU has that instruction;
    /// it also writes every n-gram's slot and advances only for known ones, so the scan has
    /// no branch on "known", which real text makes unpredictable (about half are). Otherwise
    /// the row comes from the 256 KiB `index`, whose reads missed the L1 cache on a third of
    /// the scan's time.
    #[inline(always)]
    fn known_grams<const RANKED: bool>(
        &self,
        text: &str,
        unseen: &mut [u64],
        found: &mut Found<'_>,
    ) -> usize {
        scan_grams(
            text,
            self.header.max_n,
            self.header.buckets,
            |bucket, len, start, end| {
                let w = bucket as usize / 64;
                let bit = bucket % 64;
                let Some(word) = unseen.get_mut(w) else {
                    return;
                };
                if RANKED {
                    let hit = (*word >> bit) & 1;
                    *word &= !(hit << bit);
                    let Some(&(all, before)) = self.ranked.get(w) else {
                        return;
                    };
                    let row = before + (all & ((1u64 << bit) - 1)).count_ones();
                    // hit is 0 or 1.
                    found.put(len, Known { row, start, end }, hit as usize);
                } else {
                    if *word >> bit & 1 == 0 {
                        return;
                    }
                    *word &= !(1u64 << bit);
                    let Some(&row) = self.index.get(bucket as usize) else {
                        return;
                    };
                    found.put(len, Known { row, start, end }, 1);
                }
            },
        )
    }

    /// [`LinearModel::known_grams`] with ranks for a model of 65,536 buckets (the shipped
    /// ones): the presence bits and ranks are fixed-size tables indexed by the bucket's top ten
    /// bits, so the scan pays no bounds checks on them, and their addresses stay in registers.
    #[inline(always)]
    fn known_grams_65536(
        &self,
        text: &str,
        unseen: &mut [u64; 1024],
        ranked: &[(u64, u32); 1024],
        found: &mut Found<'_>,
    ) -> usize {
        scan_grams_65536(text, self.header.max_n, |bucket, len, start, end| {
            let w = (bucket as usize >> 6) & 1023;
            let bit = bucket % 64;
            let word = &mut unseen[w];
            let hit = (*word >> bit) & 1;
            *word &= !(hit << bit);
            let (all, before) = ranked[w];
            let row = before + (all & ((1u64 << bit) - 1)).count_ones();
            // hit is 0 or 1.
            found.put(len, Known { row, start, end }, hit as usize);
        })
    }

    /// The row of `bucket`, if it has one.
    #[cfg(test)]
    fn row_of(&self, bucket: u32) -> Option<u32> {
        let bits = *self.present.get(bucket as usize / 64)?;
        if bits >> (bucket % 64) & 1 == 0 {
            return None;
        }
        self.index.get(bucket as usize).copied()
    }

    /// Scores a normalised text.
    pub(crate) fn score(&self, text: &str) -> Scores {
        // The per-thread buffers, or fresh ones in the (impossible) case they are in use.
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.score_with(text, &mut scratch),
            Err(_) => self.score_with(text, &mut Scratch::default()),
        })
    }

    fn score_with(&self, text: &str, scratch: &mut Scratch) -> Scores {
        // A copy of the presence bits (8 KiB) whose bit is cleared when its bucket is first
        // met, so "known" and "not seen yet" are one test. (One row per bucket, so distinct
        // buckets are distinct rows.)
        scratch.unseen.clear();
        scratch.unseen.extend_from_slice(&self.present);
        let room = text.len().saturating_mul(3).saturating_add(3);
        // The known n-grams go out with the scores and come back when those are dropped.
        let mut found = std::mem::take(&mut scratch.found);
        if found.len() < room {
            found.resize(room, Known::default());
        }
        let mut written = Found {
            buf: &mut found,
            longer: 0,
            single: 0,
        };
        let total = match self.avx2 {
            Some(v3) => pulp::Simd::vectorize(
                v3,
                KnownGrams {
                    model: self,
                    text,
                    unseen: &mut scratch.unseen,
                    found: &mut written,
                },
            ),
            None => self.known_grams::<false>(text, &mut scratch.unseen, &mut written),
        };
        let (longer, single) = (written.longer, written.single);
        let back = found.len().saturating_sub(single);
        let sums = self.sum_rows([
            found.get(..longer).unwrap_or_default(),
            found.get(back..).unwrap_or_default(),
        ]);
        let value = if total == 0 {
            0.0
        } else {
            f64::from(self.header.scale) / (total as f64).sqrt()
        };
        let z: Vec<f64> = self
            .header
            .bias
            .iter()
            .zip(&sums)
            .map(|(b, s)| f64::from(*b) + *s as f64 * value)
            .collect();
        let (s, c) = z.split_at(MODEL_SERVICES.len());
        let sp = softmax(s);
        let service_logp = [sp[0].ln(), sp[1].ln(), sp[2].ln()];
        Scores {
            service_logp,
            category_p: softmax(c),
            known: longer + single,
            rows: found,
            longer,
        }
    }

    /// The column sums of the weights of the rows in both parts (the two ends of [`Found`]).
    fn sum_rows(&self, rows: [&[Known]; 2]) -> Vec<i64> {
        // Integer sums, so the order of additions cannot change the result.
        match self.stride {
            // The shipped taxonomy (3 services + 16 categories) pads to 24: a fixed-size
            // accumulator the compiler keeps in vector registers; compiled again for AVX2 (which
            // widens and adds 16 weights per instruction, against 4 with the baseline's SSE2)
            // and chosen at run time when the CPU has it (`pulp`: safe, no `unsafe` here).
            24 => match self.avx2 {
                Some(v3) => pulp::Simd::vectorize(
                    v3,
                    RowSumAvx2 {
                        v3,
                        padded: &self.padded,
                        rows,
                        classes: self.classes,
                    },
                ),
                None => sum_rows::<24>(&self.padded, rows, self.classes),
            },
            _ => sum_rows_any(&self.padded, self.stride, rows, self.classes),
        }
    }

    /// The known n-grams that pushed most towards `class` (a service index, or
    /// `3 + category index`) against the other classes of its head, strongest first.
    pub(crate) fn evidence_for(&self, scores: &Scores, class: usize, n: usize) -> Vec<Gram> {
        if class >= self.classes {
            return Vec::new();
        }
        let (lo, hi) = if class < MODEL_SERVICES.len() {
            (0, MODEL_SERVICES.len())
        } else {
            (MODEL_SERVICES.len(), self.classes)
        };
        // The n best by (own weight × classes − sum of the head's weights), kept by insertion.
        let mut best: Vec<(i64, Gram)> = Vec::with_capacity(n + 1);
        let mut bar = 0i64;
        let width = (hi - lo) as i64;
        let head = usize::from(lo != 0);
        for k in scores.rows.get(..scores.longer).unwrap_or_default() {
            let r = k.row as usize;
            // The padded copy: its rows were just summed, so they are in the cache.
            let Some(own) = self.padded.get(r * self.stride + class) else {
                continue;
            };
            let sum = self.head_sums.get(r).map_or(0, |h| i64::from(h[head]));
            // Only n-grams that can be quoted (four bytes or more: single characters explain
            // little to an operator) compete; the others (two or three ASCII characters) get
            // a lead that never passes the bar.
            let lead = if k.end - k.start >= 4 {
                i64::from(*own) * width - sum
            } else {
                i64::MIN
            };
            // One comparison against the bar to beat (positive, and above the n-th best once
            // there are n): after the first few rows it almost always says no, which the CPU
            // predicts, where "positive?" alone is a coin toss.
            if lead <= bar {
                continue;
            }
            let at = best.partition_point(|b| b.0 >= lead);
            best.insert(at, (lead, k.gram()));
            best.truncate(n);
            if best.len() == n {
                bar = best.last().map_or(0, |b| b.0.max(0));
            }
        }
        best.into_iter().map(|(_, g)| g).collect()
    }
}

/// Where the scan writes the known n-grams: those of two or three characters from the front
/// of `buf`, single characters from the back. Explaining a decision quotes only the former
/// (see [`LinearModel::evidence_for`]), so it reads them alone, without testing each n-gram;
/// which end an n-gram goes to is settled at compile time (the scan passes its length as a
/// constant).
struct Found<'a> {
    buf: &'a mut [Known],
    /// N-grams written at the front.
    longer: usize,
    /// N-grams written at the back.
    single: usize,
}

impl Found<'_> {
    /// Writes `k` (an n-gram of `len` characters) at the next free slot of its end, and moves
    /// past it when `hit` is 1 (when 0, the next write overwrites it).
    #[inline(always)]
    fn put(&mut self, len: u8, k: Known, hit: usize) {
        if len == 1 {
            let at = self.buf.len().wrapping_sub(self.single + 1);
            if let Some(slot) = self.buf.get_mut(at) {
                *slot = k;
            }
            self.single += hit;
        } else {
            if let Some(slot) = self.buf.get_mut(self.longer) {
                *slot = k;
            }
            self.longer += hit;
        }
    }
}

/// Rows per flush of the `i32` accumulators into `i64`: 32,768 rows of |weight| ≤ 32,768 stay
/// below 2³¹.
const FLUSH_ROWS: usize = 32_768;

/// The column sums of the given rows of `padded` (rows of `S` weights), for the first
/// `classes` columns. Always inlined, so that it is compiled with the features of the
/// dispatching function it is called from; fixed-size rows and a local accumulator, so that
/// the compiler keeps the sums in vector registers.
#[inline(always)]
fn sum_rows<const S: usize>(padded: &[i16], parts: [&[Known]; 2], classes: usize) -> Vec<i64> {
    let mut sums = vec![0i64; classes];
    for rows in parts {
        for chunk in rows.chunks(FLUSH_ROWS) {
            let mut acc = [0i32; S];
            for r in chunk {
                let r = r.row as usize;
                let Some(w) = padded.get(r * S..(r + 1) * S) else {
                    continue;
                };
                let Ok(w) = <&[i16; S]>::try_from(w) else {
                    continue;
                };
                for k in 0..S {
                    acc[k] += i32::from(w[k]);
                }
            }
            for (s, a) in sums.iter_mut().zip(acc) {
                *s += i64::from(a);
            }
        }
    }
    sums
}

/// [`sum_rows`] for rows of 24 weights with AVX2: three instructions widen a row's weights to
/// `i32` and three add them, where the baseline x86-64 build (SSE2, no sign-extending loads)
/// spends about 48 scalar instructions. About 800 rows are summed per 500-character ticket.
/// `pulp` makes this safe: its `V3` token exists only when the CPU has the features, and
/// [`pulp::Simd::vectorize`] compiles the operation with them enabled.
#[cfg(target_arch = "x86_64")]
struct RowSumAvx2<'a> {
    v3: pulp::x86::V3,
    padded: &'a [i16],
    rows: [&'a [Known]; 2],
    classes: usize,
}

#[cfg(target_arch = "x86_64")]
impl pulp::WithSimd for RowSumAvx2<'_> {
    type Output = Vec<i64>;

    #[inline(always)]
    fn with_simd<V: pulp::Simd>(self, _: V) -> Vec<i64> {
        use std::arch::x86_64::__m128i;
        let avx2 = self.v3.avx2;
        let mut sums = vec![0i64; self.classes];
        for rows in self.rows {
            for chunk in rows.chunks(FLUSH_ROWS) {
                let mut acc = [self.v3.avx._mm256_setzero_si256(); 3];
                for r in chunk {
                    let r = r.row as usize;
                    let Some(w) = self.padded.get(r * 24..(r + 1) * 24) else {
                        continue;
                    };
                    for (lane, eight) in acc.iter_mut().zip(w.chunks_exact(8)) {
                        let Ok(eight) = <[i16; 8]>::try_from(eight) else {
                            continue;
                        };
                        let wide =
                            avx2._mm256_cvtepi16_epi32(pulp::cast::<[i16; 8], __m128i>(eight));
                        *lane = avx2._mm256_add_epi32(*lane, wide);
                    }
                }
                let lanes: [[i32; 8]; 3] = acc.map(pulp::cast);
                for (s, a) in sums.iter_mut().zip(lanes.iter().flatten()) {
                    *s += i64::from(*a);
                }
            }
        }
        sums
    }
}

/// [`sum_rows`] for any row length.
fn sum_rows_any(padded: &[i16], stride: usize, parts: [&[Known]; 2], classes: usize) -> Vec<i64> {
    let mut sums = vec![0i64; classes];
    for rows in parts {
        for chunk in rows.chunks(FLUSH_ROWS) {
            let mut acc = vec![0i32; stride];
            for r in chunk {
                let r = r.row as usize;
                if let Some(w) = padded.get(r * stride..(r + 1) * stride) {
                    for (a, x) in acc.iter_mut().zip(w) {
                        *a += i32::from(*x);
                    }
                }
            }
            for (s, a) in sums.iter_mut().zip(acc) {
                *s += i64::from(a);
            }
        }
    }
    sums
}

/// A bit per bucket saying it has a row (`buckets` below `count`, as
/// [`LinearModel::from_bytes`] checks first).
fn presence(buckets: &[u32], count: u32) -> Vec<u64> {
    let words = (count as usize).div_ceil(64);
    let mut present = vec![0u64; words];
    for b in buckets {
        if let Some(w) = present.get_mut(*b as usize / 64) {
            *w |= 1 << (b % 64);
        }
    }
    present
}

/// The number of set bits before each word of `present`.
fn ranks(present: &[u64]) -> Vec<u32> {
    let mut before = 0u32;
    present
        .iter()
        .map(|w| {
            let r = before;
            before += w.count_ones();
            r
        })
        .collect()
}

/// Buffers reused from one ticket to the next on a thread: the found n-grams (tens of
/// kilobytes) and the copy of the presence bits, which allocating and zeroing per ticket cost
/// more than a tenth of the model's time.
#[derive(Default)]
struct Scratch {
    unseen: Vec<u64>,
    found: Vec<Known>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// [`LinearModel::known_grams`] with ranks, compiled for a CPU with `popcnt` (x86-64-v3).
#[cfg(target_arch = "x86_64")]
struct KnownGrams<'a, 'b> {
    model: &'a LinearModel,
    text: &'a str,
    unseen: &'a mut [u64],
    found: &'a mut Found<'b>,
}

#[cfg(target_arch = "x86_64")]
impl pulp::WithSimd for KnownGrams<'_, '_> {
    type Output = usize;

    #[inline(always)]
    fn with_simd<V: pulp::Simd>(self, _: V) -> Self::Output {
        let model = self.model;
        let fixed = (
            <&mut [u64; 1024]>::try_from(&mut *self.unseen),
            <&[(u64, u32); 1024]>::try_from(model.ranked.as_slice()),
        );
        match fixed {
            (Ok(unseen), Ok(ranked)) if model.header.buckets == 1 << 16 => {
                model.known_grams_65536(self.text, unseen, ranked, self.found)
            }
            _ => model.known_grams::<true>(self.text, self.unseen, self.found),
        }
    }
}

/// `weights` with each row padded with zeros to a multiple of [`LANES`], and that row length.
fn padded(weights: &[i16], classes: usize) -> (Vec<i16>, usize) {
    let stride = classes.max(1).next_multiple_of(LANES);
    let mut out = Vec::with_capacity(weights.len() / classes.max(1) * stride);
    for row in weights.chunks_exact(classes.max(1)) {
        out.extend_from_slice(row);
        out.resize(out.len() + stride - row.len(), 0);
    }
    (out, stride)
}

/// Per row of `weights`: the sum of the service columns and of the category columns.
fn head_sums(weights: &[i16], classes: usize) -> Vec<[i32; 2]> {
    weights
        .chunks_exact(classes.max(1))
        .map(|row| {
            let (s, c) = row.split_at(MODEL_SERVICES.len().min(row.len()));
            // Exact for any taxonomy under 65,536 classes.
            let sum = |x: &[i16]| x.iter().fold(0i32, |a, v| a.saturating_add(i32::from(*v)));
            [sum(s), sum(c)]
        })
        .collect()
}

fn u32_le(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

/// Numerically stable softmax; an empty slice gives an empty vector.
pub(crate) fn softmax(z: &[f64]) -> Vec<f64> {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    if sum.is_finite() && sum > 0.0 {
        e.into_iter().map(|v| v / sum).collect()
    } else {
        vec![1.0 / z.len().max(1) as f64; z.len()]
    }
}

/// One labelled example for training.
#[derive(Debug, Clone)]
pub struct Example {
    /// The normalised text.
    pub text: String,
    /// Index into [`MODEL_SERVICES`]; `None` for an example that only teaches a category
    /// (a lexicon term on its own).
    pub service: Option<usize>,
    /// Category name, when the example has one that counts (in-scope examples).
    pub category: Option<String>,
}

/// Training settings; the defaults are what the shipped model uses.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Recorded as the model's version.
    pub version: String,
    /// Hash buckets.
    pub buckets: u32,
    /// Longest n-gram.
    pub max_n: usize,
    /// Passes over the data.
    pub epochs: usize,
    /// Starting learning rate (decays as 1/(1 + epoch)).
    pub learning_rate: f64,
    /// L2 penalty per update on the touched weights.
    pub l2: f64,
    /// Rows whose largest weight is smaller are not shipped.
    pub prune_below: f32,
    /// Categories in column order (the taxonomy).
    pub categories: Vec<String>,
    /// Provenance recorded in the header.
    pub trained_on: Vec<String>,
}

impl Default for TrainOptions {
    fn default() -> TrainOptions {
        TrainOptions {
            version: "ngram-lr-dev".into(),
            buckets: 1 << 16,
            max_n: 3,
            epochs: 12,
            learning_rate: 0.5,
            l2: 1e-4,
            prune_below: 0.1,
            categories: Vec::new(),
            trained_on: Vec::new(),
        }
    }
}

/// A training example as features: (distinct buckets, n-gram count), service, category.
type Doc = ((Vec<u32>, usize), Option<usize>, Option<usize>);

/// Trains both heads by stochastic gradient descent on the softmax loss, each service weighted
/// so that the services count equally (the out-of-scope examples outnumber the others), and each
/// category likewise within the category head. Deterministic: the order is shuffled with a
/// fixed seed.
pub fn train(examples: &[Example], opts: &TrainOptions) -> LinearModel {
    let ns = MODEL_SERVICES.len();
    let nc = opts.categories.len();
    let classes = ns + nc;
    let buckets = opts.buckets.max(1);
    let docs: Vec<Doc> = examples
        .iter()
        .map(|e| {
            let all = grams(&e.text, opts.max_n, buckets);
            let b = (distinct_buckets(&all), all.len());
            let cat = e
                .category
                .as_deref()
                .and_then(|c| opts.categories.iter().position(|x| x == c));
            (b, e.service, cat)
        })
        .collect();
    // Class weights: total weight per class equal, mean weight 1.
    let mut s_count = vec![0usize; ns];
    let mut c_count = vec![0usize; nc];
    for (_, s, c) in &docs {
        if let Some(s) = s {
            s_count[*s] += 1;
        }
        if let Some(c) = c {
            c_count[*c] += 1;
        }
    }
    let class_weight = |counts: &[usize]| -> Vec<f64> {
        let present = counts.iter().filter(|n| **n > 0).count().max(1) as f64;
        let total: usize = counts.iter().sum();
        counts
            .iter()
            .map(|n| {
                if *n == 0 {
                    0.0
                } else {
                    total as f64 / (present * *n as f64)
                }
            })
            .collect()
    };
    let sw = class_weight(&s_count);
    let cw = class_weight(&c_count);

    // Dense weights while training: buckets × classes.
    let mut w = vec![0.0_f64; buckets as usize * classes];
    let mut bias = vec![0.0_f64; classes];
    let mut order: Vec<usize> = (0..docs.len()).collect();
    let mut seed: u64 = 0x2026_1124;
    for epoch in 0..opts.epochs {
        // Fisher-Yates with a 64-bit LCG: reproducible across platforms.
        for i in (1..order.len()).rev() {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let j = ((seed >> 33) % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let lr = opts.learning_rate / (1.0 + epoch as f64);
        for &d in &order {
            let ((feats, total), s, c) = &docs[d];
            if feats.is_empty() {
                continue;
            }
            let value = 1.0 / (*total as f64).sqrt();
            let mut heads: Vec<(usize, usize, usize, f64)> = Vec::new();
            if let Some(s) = s {
                heads.push((0, ns, *s, sw[*s]));
            }
            if let Some(c) = c {
                heads.push((ns, classes, ns + c, cw[*c]));
            }
            for (lo, hi, gold, weight) in heads {
                let mut z: Vec<f64> = bias[lo..hi].to_vec();
                for f in feats {
                    let row = *f as usize * classes;
                    for (k, zk) in z.iter_mut().enumerate() {
                        *zk += w[row + lo + k] * value;
                    }
                }
                let p = softmax(&z);
                for (k, pk) in p.iter().enumerate() {
                    let g = (pk - if lo + k == gold { 1.0 } else { 0.0 }) * weight * lr;
                    bias[lo + k] -= g * 0.1;
                    for f in feats {
                        let i = *f as usize * classes + lo + k;
                        w[i] -= g * value + opts.l2 * lr * w[i];
                    }
                }
            }
        }
    }
    let mut kept_buckets = Vec::new();
    let mut kept = Vec::new();
    let max = w.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    let scale = if max > 0.0 { max / 32_767.0 } else { 1.0 };
    for b in 0..buckets as usize {
        let row = &w[b * classes..(b + 1) * classes];
        let row_max = row.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        if row_max as f32 >= opts.prune_below {
            // b < buckets, a u32; |v / scale| ≤ 32767 by construction of `scale`.
            kept_buckets.push(b as u32);
            kept.extend(row.iter().map(|v| (v / scale).round() as i16));
        }
    }
    let (padded_kept, stride) = padded(&kept, classes);
    let model = LinearModel {
        present: Vec::new(),
        index: Vec::new(),
        ranked: Vec::new(),
        header: Header {
            version: opts.version.clone(),
            buckets,
            max_n: opts.max_n,
            categories: opts.categories.clone(),
            scale: scale as f32,
            bias: bias.iter().map(|b| *b as f32).collect(),
            trained_on: opts.trained_on.clone(),
        },
        buckets: kept_buckets,
        head_sums: head_sums(&kept, classes),
        padded: padded_kept,
        stride,
        #[cfg(target_arch = "x86_64")]
        avx2: None,
        weights: kept,
        classes,
    };
    // Round-trip through the file format so the returned model is exactly what ships.
    LinearModel::from_bytes(&model.to_bytes()).unwrap_or(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(text: &str, service: usize, category: Option<&str>) -> Example {
        Example {
            text: text.into(),
            service: Some(service),
            category: category.map(String::from),
        }
    }

    fn tiny() -> LinearModel {
        let data = vec![
            ex("请问欠薪怎么起诉", 0, Some("labour")),
            ex("请问离婚孩子归谁", 0, Some("marriage_family")),
            ex("双方因欠薪吵起来请求调解", 1, Some("labour")),
            ex("夫妻吵架双方请求调解", 1, Some("marriage_family")),
            ex("路灯坏了请有关部门维修", 2, None),
            ex("公交站台太远希望增加线路", 2, None),
        ];
        let opts = TrainOptions {
            categories: vec!["labour".into(), "marriage_family".into()],
            buckets: 1 << 12,
            epochs: 30,
            ..TrainOptions::default()
        };
        train(&data, &opts)
    }

    #[test]
    fn a_tiny_model_learns_its_own_examples() {
        let m = tiny();
        let s = m.score("请问欠薪怎么起诉");
        let top = (0..3)
            .max_by(|a, b| s.service_logp[*a].total_cmp(&s.service_logp[*b]))
            .unwrap();
        assert_eq!(top, 0);
        assert!(s.category_p[0] > s.category_p[1]);
        let s = m.score("路灯坏了");
        let top = (0..3)
            .max_by(|a, b| s.service_logp[*a].total_cmp(&s.service_logp[*b]))
            .unwrap();
        assert_eq!(top, 2);
    }

    #[test]
    fn every_bucket_finds_its_own_row_and_no_other_bucket_finds_one() {
        let m = tiny();
        let rows: std::collections::HashMap<u32, u32> = m
            .buckets
            .iter()
            .enumerate()
            .map(|(r, b)| (*b, r as u32))
            .collect();
        assert!(!rows.is_empty());
        for b in 0..m.header.buckets {
            assert_eq!(m.row_of(b), rows.get(&b).copied(), "bucket {b}");
        }
    }

    proptest::proptest! {
        #[test]
        fn avx2_row_sums_equal_the_plain_ones(
            weights in proptest::collection::vec(proptest::num::i16::ANY, 24..24 * 40),
            picks in proptest::collection::vec(0u32..40, 0..200),
        ) {
            let rows = (weights.len() / 24) as u32;
            let padded = &weights[..rows as usize * 24];
            let picks: Vec<u32> = picks.into_iter().map(|r| r % rows).collect();
            let known = picks.clone();
            let known: Vec<Known> = known.iter().map(|&row| Known { row, start: 0, end: 0 }).collect();
            // Split in two parts, as the scan leaves them.
            let (front, back) = known.split_at(known.len() / 2);
            let plain = sum_rows::<24>(padded, [front, back], 19);
            #[cfg(target_arch = "x86_64")]
            if let Some(v3) = pulp::x86::V3::try_new() {
                let fast = pulp::Simd::vectorize(v3, RowSumAvx2 { v3, padded, rows: [front, back], classes: 19 });
                proptest::prop_assert_eq!(&fast, &plain);
            }
            // And both equal the sums written out.
            let mut want = vec![0i64; 19];
            for r in picks {
                for (k, w) in want.iter_mut().enumerate() {
                    *w += i64::from(padded[r as usize * 24 + k]);
                }
            }
            proptest::prop_assert_eq!(plain, want);
        }
    }

    #[test]
    fn the_fixed_size_scan_finds_what_the_index_finds() {
        let model =
            LinearModel::load(std::path::Path::new("models/ngram-lr-2026.12-2.hlm")).unwrap();
        assert_eq!(model.header.buckets, 1 << 16);
        let raw = std::fs::read_to_string("data/written/tickets.jsonl").unwrap();
        let texts: Vec<String> = raw
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["text"].as_str().map(super::super::normalize::normalize))
            .collect();
        assert!(texts.len() > 100);
        let ranked: &[(u64, u32); 1024] = model.ranked.as_slice().try_into().unwrap();
        let run = |text: &str, fixed: bool| {
            let mut unseen = model.present.clone();
            let mut buf = vec![Known::default(); text.len() * 3 + 3];
            let mut found = Found {
                buf: &mut buf,
                longer: 0,
                single: 0,
            };
            let total = if fixed {
                let unseen: &mut [u64; 1024] = unseen.as_mut_slice().try_into().unwrap();
                model.known_grams_65536(text, unseen, ranked, &mut found)
            } else {
                model.known_grams::<false>(text, &mut unseen, &mut found)
            };
            let (longer, single) = (found.longer, found.single);
            let back = buf.len() - single;
            let rows = |r: &[Known]| {
                r.iter()
                    .map(|k| (k.row, k.start, k.end))
                    .collect::<Vec<_>>()
            };
            (total, rows(&buf[..longer]), rows(&buf[back..]))
        };
        // Every ticket, and all of them at once (thousands of n-grams, many repeated).
        for text in texts.iter().chain([&texts.concat()]) {
            assert_eq!(run(text, true), run(text, false), "{text}");
        }
    }

    #[test]
    fn the_file_format_round_trips() {
        let m = tiny();
        let again = LinearModel::from_bytes(&m.to_bytes()).unwrap();
        assert_eq!(again.header, m.header);
        assert_eq!(again.buckets, m.buckets);
        assert_eq!(again.weights, m.weights);
    }

    #[test]
    fn broken_files_are_refused_not_panicked_on() {
        let bytes = tiny().to_bytes();
        assert!(LinearModel::from_bytes(b"").is_err());
        assert!(LinearModel::from_bytes(b"HLMODEL1\n{}\n").is_err());
        for cut in [1, 9, 20, bytes.len() / 2, bytes.len() - 1] {
            assert!(LinearModel::from_bytes(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(LinearModel::from_bytes(&extra).is_err());
    }

    #[test]
    fn no_known_ngrams_means_the_biases_alone() {
        let m = tiny();
        let s = m.score("！！！");
        assert_eq!(s.known, 0);
        assert!(s.service_logp.iter().all(|v| v.is_finite()));
    }
}
