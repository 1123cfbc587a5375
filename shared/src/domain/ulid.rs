//! The ids of training sets and exports: ULIDs (48 bits of milliseconds, 80 random), in
//! Crockford's base 32.

/// A ULID, so ids sort by creation time (an actor's sets list newest first by key) and need
/// no coordination to be unique.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ulid(String);

/// Crockford's base 32, the ULID alphabet.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl Ulid {
    /// The ULID of `epoch_ms` (its first 48 bits) and 80 bits of `random`.
    pub fn new(epoch_ms: u64, random: u128) -> Self {
        let value =
            (u128::from(epoch_ms & 0xFFFF_FFFF_FFFF) << 80) | (random & ((1u128 << 80) - 1));
        let text = (0..26)
            .rev()
            .map(|i| char::from(CROCKFORD[((value >> (i * 5)) & 31) as usize]))
            .collect();
        Self(text)
    }

    /// Reads an id from a path: 26 Crockford characters (upper case), the first at most `7`.
    pub fn parse(value: &str) -> Option<Self> {
        let valid = value.len() == 26
            && value.bytes().all(|b| CROCKFORD.contains(&b))
            && value.as_bytes()[0] <= b'7';
        valid.then(|| Self(value.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Ulid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_a_ulid_that_sorts_by_time_and_parses_back() {
        let id = Ulid::new(1_764_633_600_000, 0x1234_5678_9abc_def0_1234);
        assert_eq!(id.as_str().len(), 26);
        assert_eq!(Ulid::parse(id.as_str()), Some(id.clone()));
        let later = Ulid::new(1_764_633_600_001, 0);
        assert!(later > id, "{later} after {id}");
        assert_eq!(Ulid::new(0, 0).as_str(), "00000000000000000000000000");
        for bad in [
            "",
            "01ARZ3NDEKTSV4RRFFQ69G5FA",
            "01arz3ndektsv4rrffq69g5fav",
            "81ARZ3NDEKTSV4RRFFQ69G5FAV",
            "01ARZ3NDEKTSV4RRFFQ69G5FAU",
        ] {
            assert_eq!(Ulid::parse(bad), None, "{bad}");
        }
    }
}
