//! Process-wide string pools that generated events borrow from (SPEC.md §2.7, §2.8, §5.2).
//!
//! Built once, on first use, from a fixed seed ([`POOL_SEED`]), so every process sees the same
//! pools and a run is byte-for-byte repeatable (Flink builds its pools from unseeded RNGs; that
//! is the one deliberate difference). All content is ASCII, so every byte range is valid UTF-8.
//!
//! * `extra`: 1 MiB of padding letters made like Beam/Flink: six characters per random 32-bit
//!   int `r`, `'a' + (r rem 26)` with Java's truncating remainder, so negative `r` gives codes
//!   down to `'H'` (upper-case letters and ``[\]^_` `` appear; SPEC.md §2.9.6).
//! * `word`: 1 MiB of independent `str()` characters (space with probability 1/13, else a
//!   uniform lower-case letter). A window at a random offset, trimmed, has the distribution of
//!   SPEC.md §2.7's `str(max)`; item names, descriptions and e-mail words are such windows.
//! * the 10,000-entry channel/URL table and the 4 hot channels with their URLs (§2.8);
//! * 11 first names × 9 last names precomputed as 99 "First Last" strings, 10 cities, 6 states.

use crate::nexmark::rng::SplitMix64;
use std::sync::OnceLock;

/// Seed of the pools' own random stream (independent of the run's seed, see module doc).
const POOL_SEED: u64 = 0x4E45_584D_4152_4B31; // "NEXMARK1"

/// Length of the `extra` padding pool: 1 MiB, as in Flink.
pub(crate) const EXTRA_POOL_LEN: u64 = 1 << 20;
/// Length of the `str()` letter pool.
pub(crate) const WORD_POOL_LEN: u64 = 1 << 20;
/// Ordinary channels `channel-0` … `channel-9999`.
pub(crate) const NUM_CHANNELS: u64 = 10_000;
/// Brand channels that half of all bids use.
pub(crate) const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];

// Made-up lists with the sizes and mean lengths of Flink's (SPEC.md §1.1): first names mean 4.73,
// last names 5.78, cities 7.4 (range 4..13), all cities in the six states.
const FIRST_NAMES: [&str; 11] = [
    "Anna", "Bert", "Clara", "David", "Emma", "Frank", "Grace", "Henry", "Irene", "James", "Laura",
];
const LAST_NAMES: [&str; 9] = [
    "Smith", "Jones", "Miller", "Davis", "Garcia", "Wilson", "Taylor", "Walker", "Johnson",
];
pub(crate) const CITIES: [&str; 10] = [
    "Phoenix",
    "Seattle",
    "Boise",
    "Cheyenne",
    "Portland",
    "Sacramento",
    "Yuma",
    "Spokane",
    "Salem",
    "San Francisco",
];
/// Upper case, exactly as Flink: q3 filters on `OR`, `ID`, `CA`.
pub(crate) const STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];

pub(crate) const NUM_FIRST_NAMES: u64 = FIRST_NAMES.len() as u64;
pub(crate) const NUM_LAST_NAMES: u64 = LAST_NAMES.len() as u64;

const _: () = assert!(EXTRA_POOL_LEN <= u32::MAX as u64);
const _: () = assert!(WORD_POOL_LEN >= 1000);

/// The pools; obtain them with [`pools`].
pub(crate) struct Pools {
    extra: String,
    word: String,
    names: Vec<String>,
    channels: Vec<String>,
    channel_urls: Vec<String>,
    hot_urls: Vec<String>,
}

/// The process-wide pools, built on first call (about 10 ms).
pub(crate) fn pools() -> &'static Pools {
    static POOLS: OnceLock<Pools> = OnceLock::new();
    POOLS.get_or_init(Pools::build)
}

impl Pools {
    fn build() -> Pools {
        let mut rng = SplitMix64::new(POOL_SEED);
        let extra = extra_letters(&mut rng, EXTRA_POOL_LEN as usize);
        let word: String = (0..WORD_POOL_LEN)
            .map(|_| str_char(&mut rng, ' '))
            .collect();
        let names = FIRST_NAMES
            .iter()
            .flat_map(|first| LAST_NAMES.iter().map(move |last| format!("{first} {last}")))
            .collect();
        let hot_urls = HOT_CHANNELS.iter().map(|_| base_url(&mut rng)).collect();
        let mut channels = Vec::with_capacity(NUM_CHANNELS as usize);
        let mut channel_urls = Vec::with_capacity(NUM_CHANNELS as usize);
        for i in 0..NUM_CHANNELS {
            channels.push(format!("channel-{i}"));
            let mut url = base_url(&mut rng);
            if rng.below(10) > 0 {
                url.push_str(&format!("&channel_id={}", channel_id_param(i as i32)));
            }
            channel_urls.push(url);
        }
        let pools = Pools {
            extra,
            word,
            names,
            channels,
            channel_urls,
            hot_urls,
        };
        assert!(pools.extra.is_ascii());
        assert!(pools.word.is_ascii());
        assert_eq!(pools.extra.len() as u64, EXTRA_POOL_LEN);
        assert_eq!(pools.names.len() as u64, NUM_FIRST_NAMES * NUM_LAST_NAMES);
        pools
    }

    /// `len` bytes of padding starting at `offset` (a slice; no copy).
    pub(crate) fn extra(&'static self, offset: u64, len: u64) -> &'static str {
        &self.extra[offset as usize..(offset + len) as usize]
    }

    /// A `str()` window of `len` characters at `offset`, trimmed of spaces like Java's `trim`.
    pub(crate) fn word(&'static self, offset: u64, len: u64) -> &'static str {
        // Byte-wise trim: the pool is ASCII, and this is cheaper than `str::trim_matches`'s
        // char-pattern machinery on the hot path.
        let (mut start, mut end) = (offset as usize, (offset + len) as usize);
        let bytes = self.word.as_bytes();
        while start < end && bytes[start] == b' ' {
            start += 1;
        }
        while end > start && bytes[end - 1] == b' ' {
            end -= 1;
        }
        &self.word[start..end]
    }

    /// "First Last" for first-name index `first` and last-name index `last`.
    pub(crate) fn name(&'static self, first: u64, last: u64) -> &'static str {
        &self.names[(first * NUM_LAST_NAMES + last) as usize]
    }

    /// Ordinary channel `index`: (`channel-<index>`, its URL).
    pub(crate) fn channel(&'static self, index: u64) -> (&'static str, &'static str) {
        let i = index as usize;
        (&self.channels[i], &self.channel_urls[i])
    }

    /// Hot channel `index` (0..4): (brand name, its URL).
    pub(crate) fn hot_channel(&'static self, index: u64) -> (&'static str, &'static str) {
        let i = index as usize;
        (HOT_CHANNELS[i], &self.hot_urls[i])
    }
}

/// The value of `channel_id=` for channel `i`: `Math.abs(Integer.reverse(i))`, which stays
/// negative for `i = 1` (reverse is `i32::MIN`) exactly as in Java.
fn channel_id_param(i: i32) -> i32 {
    i.reverse_bits().wrapping_abs()
}

/// Padding letters, six per random int (module doc).
fn extra_letters(rng: &mut SplitMix64, len: usize) -> String {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut r = rng.next_i32();
        for _ in 0..6 {
            if out.len() == len {
                break;
            }
            // Truncating remainder in [-25, 25]: characters 'H' ..= 'z', all ASCII.
            out.push(char::from((i32::from(b'a') + r % 26) as u8));
            r /= 26;
        }
    }
    out
}

/// One `str()` character: `pad` with probability 1/13, else a uniform lower-case letter.
fn str_char(rng: &mut SplitMix64, pad: char) -> char {
    if rng.below(13) == 0 {
        pad
    } else {
        char::from(b'a' + rng.below(26) as u8)
    }
}

/// `https://www.nexmark.com/<s1>/<s2>/<s3>/item.htm?query=1` with each segment `str(5, '_')`.
fn base_url(rng: &mut SplitMix64) -> String {
    let mut url = String::from("https://www.nexmark.com/");
    for _ in 0..3 {
        let len = 3 + rng.below(5 - 3);
        for _ in 0..len {
            url.push(str_char(rng, '_'));
        }
        url.push('/');
    }
    url.push_str("item.htm?query=1");
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_lists_have_specified_shapes() {
        let mean = |l: &[&str]| l.iter().map(|s| s.len()).sum::<usize>() as f64 / l.len() as f64;
        assert!((mean(&FIRST_NAMES) - 4.7).abs() < 0.1);
        assert!((mean(&LAST_NAMES) - 5.8).abs() < 0.1);
        assert!((mean(&CITIES) - 7.4).abs() < 0.05);
        assert!(CITIES.iter().all(|c| (4..=13).contains(&c.len())));
        assert_eq!(pools().name(0, 0), "Anna Smith");
        assert_eq!(pools().name(10, 8), "Laura Johnson");
    }

    #[test]
    fn pools_channel_ids_follow_java_bit_reversal() {
        assert_eq!(channel_id_param(0), 0);
        assert_eq!(channel_id_param(1), i32::MIN);
        assert_eq!(channel_id_param(2), 1 << 30);
        let p = pools();
        assert_eq!(p.channel(42).0, "channel-42");
        let with_id = (0..NUM_CHANNELS)
            .filter(|&i| p.channel(i).1.contains("&channel_id="))
            .count();
        assert!((8800..9200).contains(&with_id), "{with_id}");
        for i in 0..4 {
            let (_, url) = p.hot_channel(i);
            let parts: Vec<&str> = url.split('/').collect();
            assert_eq!(parts[2], "www.nexmark.com");
            assert!(parts[3..6].iter().all(|s| (3..=4).contains(&s.len())));
            assert_eq!(parts[6], "item.htm?query=1");
        }
    }

    #[test]
    fn pools_extra_letters_match_the_negative_remainder_rule() {
        let extra = &pools().extra;
        assert!(extra.bytes().all(|b| (b'H'..=b'z').contains(&b)));
        assert!(
            extra.contains('\\'),
            "backslash must occur (JSON escaping is exercised)"
        );
        let word = &pools().word;
        let spaces = word.bytes().filter(|&b| b == b' ').count() as f64 / word.len() as f64;
        assert!((spaces - 1.0 / 13.0).abs() < 0.002, "{spaces}");
    }
}
