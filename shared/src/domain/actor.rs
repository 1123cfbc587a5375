//! Actors: validated identifiers, the profile operators write, and the descriptor rule.

use std::fmt;

use serde::Serialize;
use thiserror::Error;

/// The longest actor id or actor name accepted, in bytes.
pub const MAX_IDENTIFIER_LEN: usize = 128;

/// A caller's input that the domain refuses before doing anything.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValidationError {
    /// An actor id or actor name that is empty, too long, or has characters outside the rule.
    #[error("invalid {kind}: {reason}")]
    InvalidIdentifier {
        /// Which identifier ("actor id", "actor name").
        kind: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },
}

/// Checks the rule shared by actor ids and actor names, which end up in S3 keys and
/// DynamoDB keys: 1 to 128 ASCII letters, digits, `_`, `-` or `.`, starting with a letter or
/// digit, and never containing `..`.
pub fn validate_identifier(kind: &'static str, value: &str) -> Result<(), ValidationError> {
    let invalid = |reason| Err(ValidationError::InvalidIdentifier { kind, reason });
    if value.is_empty() {
        return invalid("must not be empty");
    }
    if value.len() > MAX_IDENTIFIER_LEN {
        return invalid("must be at most 128 characters");
    }
    if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return invalid("must start with a letter or a digit");
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return invalid("may contain only letters, digits, '_', '-' and '.'");
    }
    if value.contains("..") {
        return invalid("must not contain '..'");
    }
    Ok(())
}

/// The id of a system actor, as it appears in the API's path (`/api/actors/{actorId}/...`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ActorId(String);

impl ActorId {
    /// Validates `value` as an actor id.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        validate_identifier("actor id", value)?;
        Ok(Self(value.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What operators record about an actor (DynamoDB item `ACTOR#{id}` / `PROFILE`).
/// Every field is optional: a profile may be partial, or absent altogether.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActorProfile {
    /// The actor's name, used in S3 keys and file names.
    pub actor_name: Option<String>,
    /// The actor's sex as the operator wrote it ("male", "Female", ...).
    pub sex: Option<String>,
    /// The S3 key of the actor's base photo.
    pub base_image_key: Option<String>,
    /// The word a LoRA trainer binds to the actor, when the operators chose one.
    pub trigger_word: Option<String>,
}

/// The word the prompts use for the actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Descriptor {
    /// "man"
    Man,
    /// "woman"
    Woman,
    /// "person": the neutral default.
    Person,
}

impl Descriptor {
    /// The word itself.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Man => "man",
            Self::Woman => "woman",
            Self::Person => "person",
        }
    }

    /// Reads a sex or gender word, case-insensitively: male/man/m → man, female/woman/f → woman.
    fn from_word(word: &str) -> Option<Self> {
        match word.trim().to_ascii_lowercase().as_str() {
            "female" | "woman" | "f" => Some(Self::Woman),
            "male" | "man" | "m" => Some(Self::Man),
            _ => None,
        }
    }
}

/// Where the descriptor came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DescriptorSource {
    /// The profile's `sex` attribute.
    Profile,
    /// A whole word of the actor id (`..._female`, `..._male`).
    Name,
    /// Neither said anything: "person".
    Default,
}

/// Chooses the descriptor for an actor.
///
/// 1. The profile's `sex`, when present and not blank: male/man → man, female/woman → woman,
///    any other value (e.g. "non-binary") → person. The profile is the operator's word, so a
///    value it states is never overridden by a guess from the id.
/// 2. Otherwise the id's own words, split on anything but letters and digits and compared
///    whole and case-insensitively, female/woman before male/man (`0000_european_16_female`
///    → woman; `romanov` is not "man").
/// 3. Otherwise person.
pub fn choose_descriptor(
    actor_id: &ActorId,
    profile: Option<&ActorProfile>,
) -> (Descriptor, DescriptorSource) {
    let stated_sex = profile
        .and_then(|p| p.sex.as_deref())
        .filter(|sex| !sex.trim().is_empty());
    if let Some(sex) = stated_sex {
        let descriptor = Descriptor::from_word(sex).unwrap_or(Descriptor::Person);
        return (descriptor, DescriptorSource::Profile);
    }
    let words: Vec<Descriptor> = actor_id
        .as_str()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| word.len() > 1)
        .filter_map(Descriptor::from_word)
        .collect();
    for wanted in [Descriptor::Woman, Descriptor::Man] {
        if words.contains(&wanted) {
            return (wanted, DescriptorSource::Name);
        }
    }
    (Descriptor::Person, DescriptorSource::Default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(value: &str) -> ActorId {
        ActorId::parse(value).unwrap()
    }

    fn profile_with_sex(sex: &str) -> ActorProfile {
        ActorProfile {
            sex: Some(sex.to_owned()),
            ..ActorProfile::default()
        }
    }

    #[test]
    fn accepts_the_studio_ids() {
        for ok in ["0000_european_16_male", "a", "actor-7.v2", &"x".repeat(128)] {
            assert_eq!(ActorId::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_ids_that_could_escape_a_key() {
        for bad in [
            "",
            "..",
            "a..b",
            "_leading",
            ".hidden",
            "a/b",
            "a b",
            "a%2Fb",
            "ümlaut",
            &"x".repeat(129),
        ] {
            assert!(ActorId::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn profile_sex_wins_case_insensitively() {
        let actor = id("0000_european_16_female");
        for (sex, expected) in [
            ("male", Descriptor::Man),
            ("MALE", Descriptor::Man),
            (" Man ", Descriptor::Man),
            ("Female", Descriptor::Woman),
            ("woman", Descriptor::Woman),
            ("non-binary", Descriptor::Person),
        ] {
            let profile = profile_with_sex(sex);
            assert_eq!(
                choose_descriptor(&actor, Some(&profile)),
                (expected, DescriptorSource::Profile),
                "sex {sex:?}"
            );
        }
    }

    #[test]
    fn blank_or_missing_sex_falls_back_to_the_id() {
        let actor = id("0000_european_16_female");
        let expected = (Descriptor::Woman, DescriptorSource::Name);
        assert_eq!(choose_descriptor(&actor, None), expected);
        assert_eq!(
            choose_descriptor(&actor, Some(&ActorProfile::default())),
            expected
        );
        assert_eq!(
            choose_descriptor(&actor, Some(&profile_with_sex("  "))),
            expected
        );
    }

    #[test]
    fn id_words_are_matched_whole() {
        for (value, expected) in [
            (
                "0000_european_16_male",
                (Descriptor::Man, DescriptorSource::Name),
            ),
            (
                "0000-european-16-FEMALE",
                (Descriptor::Woman, DescriptorSource::Name),
            ),
            ("old.man.7", (Descriptor::Man, DescriptorSource::Name)),
            (
                "male_and_female",
                (Descriptor::Woman, DescriptorSource::Name),
            ),
            (
                "romanov_42",
                (Descriptor::Person, DescriptorSource::Default),
            ),
            ("femaleish", (Descriptor::Person, DescriptorSource::Default)),
            ("actor_m_7", (Descriptor::Person, DescriptorSource::Default)),
            (
                "unknown_actor",
                (Descriptor::Person, DescriptorSource::Default),
            ),
        ] {
            assert_eq!(
                choose_descriptor(&id(value), None),
                expected,
                "id {value:?}"
            );
        }
    }
}
