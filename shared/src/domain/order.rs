//! What a paid prediction is for: the actor, the prompt and the seed. Whoever collects the
//! prediction (the run that paid for it, a retry, the reconciler) stores its image from this
//! alone, so a profile edited or a photo deleted since changes nothing.

use super::caption::custom_prompt_caption;
use super::prompts::preset;
use super::request::{PromptChoice, ResolvedActor};

/// What a paid prediction was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageOrder {
    /// The actor, as resolved when the prediction was paid for.
    pub actor: ResolvedActor,
    /// The prompt.
    pub prompt: PromptChoice,
    /// The seed, when given.
    pub seed: Option<u64>,
    /// Who asked for it, when the entry knew.
    pub requested_by: Option<String>,
}

impl PromptChoice {
    /// A prompt as a record kept it: a preset's id (its category from the preset), the
    /// text that was sent and its caption. An id no preset has any more is kept as a custom
    /// prompt, since the text sent is what made the image. A record from before captions
    /// gets the caption its prompt would get now.
    pub fn recorded(prompt_id: Option<&str>, text: String, caption: Option<String>) -> Self {
        match prompt_id.and_then(preset) {
            Some(preset) => Self {
                prompt_id: Some(preset.id),
                category: Some(preset.category),
                caption: caption.unwrap_or_else(|| preset.caption.to_owned()),
                text,
            },
            None => Self {
                prompt_id: None,
                category: None,
                caption: caption.unwrap_or_else(|| custom_prompt_caption(&text)),
                text,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_preset_gets_its_category_back_and_an_unknown_id_is_custom() {
        let known = PromptChoice::recorded(Some("bw_woodcut"), "sent".to_owned(), None);
        assert_eq!(known.prompt_id, Some("bw_woodcut"));
        assert!(known.category.is_some());
        assert_eq!(known.text, "sent");
        assert!(known.caption.contains("woodcut"), "{}", known.caption);
        let gone = PromptChoice::recorded(Some("retired_preset"), "sent".to_owned(), None);
        assert_eq!((gone.prompt_id, gone.category), (None, None));
        assert_eq!(gone.caption, "[trigger], sent");
        let own = PromptChoice::recorded(None, "sent".to_owned(), Some("mine".to_owned()));
        assert_eq!(own.caption, "mine");
    }
}
