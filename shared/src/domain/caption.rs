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

/// A caption as given by a caller, trimmed; `None` when it is empty, too long or holds a
/// control character (a sidecar is one line of text).
pub fn checked_caption(caption: &str) -> Option<String> {
    let caption = caption.trim();
    let valid = !caption.is_empty()
        && caption.chars().count() <= MAX_CAPTION_LEN
        && !caption.chars().any(char::is_control);
    valid.then(|| caption.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_custom_prompt_is_captioned_after_the_trigger() {
        assert_eq!(
            custom_prompt_caption(" a knight in armour,\n\toil painting "),
            "[trigger], a knight in armour, oil painting"
        );
    }

    #[test]
    fn a_caption_is_one_line_of_bounded_text() {
        assert_eq!(checked_caption("  a b  ").as_deref(), Some("a b"));
        assert_eq!(checked_caption("   "), None);
        assert_eq!(checked_caption("a\nb"), None);
        assert_eq!(checked_caption(&"x".repeat(MAX_CAPTION_LEN + 1)), None);
        assert!(checked_caption(&"x".repeat(MAX_CAPTION_LEN)).is_some());
    }
}
