//! Captions: the text a LoRA trainer reads beside each image (`{actor_name}_{n}.txt`). A
//! caption describes what varies between the images (style, scene, framing, light) and
//! leaves the person to the trigger word, so the trainer binds the word to the identity.
//! Captions are stored with the [`TRIGGER_TOKEN`] where the word goes (ai-toolkit's
//! convention), for an export to put the actor's word in.

/// Where the trigger word goes in a stored caption.
pub const TRIGGER_TOKEN: &str = "[trigger]";

/// The longest caption accepted (a custom prompt's own, or an artist's correction).
pub const MAX_CAPTION_LEN: usize = 1_000;

/// The caption of an image made from a custom prompt with no caption of its own: the
/// trigger, then the prompt as written, on one line.
pub fn custom_prompt_caption(prompt: &str) -> String {
    let words: Vec<&str> = prompt.split_whitespace().collect();
    format!("{TRIGGER_TOKEN}, {}", words.join(" "))
}

/// A caption as given by a caller, trimmed; the refusal's message when it is empty, too long
/// or holds a control character (a sidecar is one line of text).
pub fn checked_caption(caption: &str) -> Result<String, String> {
    let caption = caption.trim();
    let valid = !caption.is_empty()
        && caption.chars().count() <= MAX_CAPTION_LEN
        && !caption.chars().any(char::is_control);
    if valid {
        Ok(caption.to_owned())
    } else {
        Err(format!(
            "caption must be 1 to {MAX_CAPTION_LEN} characters on one line"
        ))
    }
}

/// The actor's trigger word: the profile's when it has one, else one made from the actor's
/// name: its lowercase letters and digits (at most 12) and four hex digits of a hash of the
/// whole name, so that two actors whose names differ only in punctuation or case still get
/// different words, and the word is rare enough not to be an everyday one.
pub fn trigger_word(profile_word: Option<&str>, actor_name: &str) -> String {
    if let Some(word) = profile_word.map(str::trim).filter(|word| !word.is_empty()) {
        return word.to_owned();
    }
    let letters: String = actor_name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .take(12)
        .collect();
    format!("{letters}_{:04x}", fnv1a(actor_name.as_bytes()) & 0xffff)
}

/// 32-bit FNV-1a: a small stable hash (the standard library's may change between releases,
/// and a trigger word must not).
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_word_wins_over_the_derived_one() {
        assert_eq!(trigger_word(Some(" zxq_alice "), "alice"), "zxq_alice");
        assert_eq!(
            trigger_word(Some("  "), "alice"),
            trigger_word(None, "alice")
        );
    }

    #[test]
    fn derived_words_are_stable_and_distinct_per_actor() {
        let alice = trigger_word(None, "alice");
        assert!(alice.starts_with("alice_") && alice.len() == "alice_".len() + 4);
        assert_eq!(alice, trigger_word(None, "alice"));
        let names = ["alice", "Alice", "alice-1", "alice.1", "alice_1", "bob"];
        let mut words: Vec<_> = names.iter().map(|name| trigger_word(None, name)).collect();
        words.sort_unstable();
        words.dedup();
        assert_eq!(words.len(), names.len(), "{words:?}");
    }

    #[test]
    fn a_custom_prompt_is_captioned_after_the_trigger() {
        assert_eq!(
            custom_prompt_caption(" a knight in armour,\n\toil painting "),
            "[trigger], a knight in armour, oil painting"
        );
    }

    #[test]
    fn a_caption_is_one_line_of_bounded_text() {
        assert_eq!(checked_caption("  a b  ").ok().as_deref(), Some("a b"));
        assert_eq!(checked_caption("   ").ok(), None);
        assert_eq!(checked_caption("a\nb").ok(), None);
        assert_eq!(checked_caption(&"x".repeat(MAX_CAPTION_LEN + 1)).ok(), None);
        assert!(checked_caption(&"x".repeat(MAX_CAPTION_LEN)).is_ok());
    }
}
