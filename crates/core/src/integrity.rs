//! Subresource Integrity for downloads: parse an `integrity` option (`sha256-…`,
//! `sha384-…`, `sha512-…`, several separated by spaces) and check stored bytes
//! against it.
//!
//! The check runs over the whole stored file once every byte is committed, reading
//! the chunks back from storage in order ([`Verifier`]). Hashing at the end rather
//! than while streaming is what makes it hold across resumes and restarts: no hash
//! state has to survive a killed worker, and bytes fetched in several attempts are
//! checked exactly as they are stored. A task with an `integrity` option is
//! `completed` (and its bytes readable through `session.blob()`) only after the
//! check passed; a mismatch fails it with `integrity` and frees its bytes.
//!
//! As in the SRI specification, only the strongest algorithm given counts, and any
//! of its digests may match. Unlike a browser, which ignores metadata it cannot use,
//! longhaul refuses an option with no usable digest: a typo should not turn the
//! check off silently.

use super::error::{ErrorCode, TaskError};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha384, Sha512};

/// Longest `integrity` option accepted, in bytes.
pub const MAX_INTEGRITY_BYTES: usize = 4096;

/// A hash algorithm SRI allows, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl Algorithm {
    fn parse(s: &str) -> Option<Algorithm> {
        match s {
            "sha256" => Some(Algorithm::Sha256),
            "sha384" => Some(Algorithm::Sha384),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    /// The SRI prefix (`"sha256"`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn digest_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 32,
            Algorithm::Sha384 => 48,
            Algorithm::Sha512 => 64,
        }
    }
}

/// Validated integrity metadata: the strongest algorithm given and its digests.
/// Stored with the task as its normalized SRI string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Integrity {
    alg: Algorithm,
    digests: Vec<Vec<u8>>,
}

impl Integrity {
    /// Parse SRI metadata. Options after `?` are ignored, as the specification says;
    /// unknown algorithms are skipped; a digest of a known algorithm that is not
    /// valid base64 of the right length is refused.
    pub fn parse(s: &str) -> Result<Integrity, TaskError> {
        if s.len() > MAX_INTEGRITY_BYTES {
            return Err(TaskError::invalid(format!(
                "the integrity option exceeds {MAX_INTEGRITY_BYTES} bytes"
            )));
        }
        let mut best: Option<Integrity> = None;
        for token in s.split_ascii_whitespace() {
            let token = token.split('?').next().unwrap_or("");
            let Some((alg, b64)) = token.split_once('-') else {
                continue;
            };
            let Some(alg) = Algorithm::parse(&alg.to_ascii_lowercase()) else {
                continue;
            };
            let digest = STANDARD
                .decode(b64)
                .ok()
                .filter(|d| d.len() == alg.digest_len())
                .ok_or_else(|| {
                    TaskError::invalid(format!(
                        "\"{token}\" is not a {} digest in base64",
                        alg.name()
                    ))
                })?;
            match &mut best {
                Some(b) if b.alg == alg => b.digests.push(digest),
                Some(b) if b.alg > alg => {}
                _ => {
                    best = Some(Integrity {
                        alg,
                        digests: vec![digest],
                    })
                }
            }
        }
        best.ok_or_else(|| {
            TaskError::invalid(
                "the integrity option has no sha256, sha384 or sha512 digest (SRI syntax: \"sha256-<base64>\")",
            )
        })
    }

    /// The algorithm that counts.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// A verifier to feed the stored bytes into, in order.
    pub fn verifier(&self) -> Verifier {
        let hasher = match self.alg {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha384 => Hasher::Sha384(Sha384::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        };
        Verifier {
            hasher,
            expected: self.clone(),
            bytes: 0,
        }
    }
}

impl TryFrom<String> for Integrity {
    type Error = TaskError;
    fn try_from(s: String) -> Result<Integrity, TaskError> {
        Integrity::parse(&s)
    }
}

impl From<Integrity> for String {
    fn from(i: Integrity) -> String {
        let mut out = String::new();
        for d in &i.digests {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(i.alg.name());
            out.push('-');
            out.push_str(&STANDARD.encode(d));
        }
        out
    }
}

enum Hasher {
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

/// Hashes a stored file chunk by chunk and compares the result with the metadata.
pub struct Verifier {
    hasher: Hasher,
    expected: Integrity,
    bytes: u64,
}

impl Verifier {
    /// Feed the next bytes of the file.
    pub fn update(&mut self, bytes: &[u8]) {
        self.bytes += bytes.len() as u64;
        match &mut self.hasher {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha384(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    /// How many bytes were fed.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// `Ok` if the file's digest is one of the expected ones, else an `integrity`
    /// error that names the algorithm and the digest found.
    pub fn finish(self) -> Result<(), TaskError> {
        let got: Vec<u8> = match self.hasher {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        };
        if self.expected.digests.contains(&got) {
            return Ok(());
        }
        Err(TaskError::new(
            ErrorCode::Integrity,
            format!(
                "the {} bytes received do not match the integrity metadata: their {} is {}-{}; the bytes were discarded",
                self.bytes,
                self.expected.alg.name(),
                self.expected.alg.name(),
                STANDARD.encode(&got)
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sri(alg: Algorithm, data: &[u8]) -> String {
        let d = match alg {
            Algorithm::Sha256 => Sha256::digest(data).to_vec(),
            Algorithm::Sha384 => Sha384::digest(data).to_vec(),
            Algorithm::Sha512 => Sha512::digest(data).to_vec(),
        };
        format!("{}-{}", alg.name(), STANDARD.encode(d))
    }

    fn check(meta: &str, chunks: &[&[u8]]) -> Result<(), TaskError> {
        let mut v = Integrity::parse(meta)?.verifier();
        for c in chunks {
            v.update(c);
        }
        v.finish()
    }

    #[test]
    fn each_algorithm_verifies_across_chunk_boundaries() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for alg in [Algorithm::Sha256, Algorithm::Sha384, Algorithm::Sha512] {
            let meta = sri(alg, &data);
            assert!(check(&meta, &[&data]).is_ok(), "{meta}");
            let (a, b) = data.split_at(4097);
            assert!(check(&meta, &[a, &[], b]).is_ok(), "split {meta}");
            let mut bad = data.clone();
            bad[5000] ^= 1;
            let e = check(&meta, &[&bad]).unwrap_err();
            assert_eq!(e.code, ErrorCode::Integrity);
            assert!(e.message.contains(alg.name()), "{}", e.message);
            assert!(check(&meta, &[&data[..9999]]).is_err(), "short file");
        }
    }

    #[test]
    fn the_strongest_algorithm_counts_and_any_of_its_digests_matches() {
        let data = b"hello";
        let other = b"other";
        // A wrong sha256 beside a right sha512: only sha512 counts.
        let meta = format!(
            "{} {}",
            sri(Algorithm::Sha256, other),
            sri(Algorithm::Sha512, data)
        );
        assert_eq!(
            Integrity::parse(&meta).unwrap().algorithm(),
            Algorithm::Sha512
        );
        assert!(check(&meta, &[data]).is_ok());
        // A right sha256 beside a wrong sha384: sha384 counts, so it fails.
        let meta = format!(
            "{} {}",
            sri(Algorithm::Sha256, data),
            sri(Algorithm::Sha384, other)
        );
        assert!(check(&meta, &[data]).is_err());
        // Two sha256 digests: either matches.
        let meta = format!(
            "{} {}",
            sri(Algorithm::Sha256, other),
            sri(Algorithm::Sha256, data)
        );
        assert!(check(&meta, &[data]).is_ok());
        // Options after '?', unknown algorithms and extra whitespace are ignored.
        let meta = format!(
            "  md5-abc  {}?opt=1\t",
            sri(Algorithm::Sha256, data).replace("sha256", "SHA256")
        );
        assert!(check(&meta, &[data]).is_ok());
    }

    #[test]
    fn bad_metadata_is_refused() {
        for bad in [
            "",
            "   ",
            "md5-1B2M2Y8AsgTpgAmY7PhCfg==",
            "sha256",
            "sha256-",
            "sha256-not*base64",
            // A sha384 digest labelled sha256 (wrong length).
            &sri(Algorithm::Sha384, b"x").replace("sha384", "sha256"),
            &"a".repeat(MAX_INTEGRITY_BYTES + 1),
        ] {
            let e = Integrity::parse(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn round_trips_through_its_stored_string() {
        let meta = format!(
            "{} {}",
            sri(Algorithm::Sha384, b"a"),
            sri(Algorithm::Sha384, b"b")
        );
        let i = Integrity::parse(&meta).unwrap();
        let s: String = i.clone().into();
        assert_eq!(s, meta);
        assert_eq!(Integrity::try_from(s).unwrap(), i);
    }
}
