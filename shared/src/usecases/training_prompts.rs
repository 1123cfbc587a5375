//! The training-prompts use case: an actor's descriptor and the presets rendered for it.

use serde::Serialize;

use crate::domain::actor::{ActorId, Descriptor, DescriptorSource, choose_descriptor};
use crate::domain::prompts::{PRESETS, PromptCategory, PromptPreset};
use crate::ports::{ActorProfiles, StoreError};

/// The answer of `GET /api/actors/{actorId}/training-prompts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrainingPrompts {
    /// The actor asked about.
    pub actor_id: ActorId,
    /// The subject word used in every prompt.
    pub descriptor: Descriptor,
    /// Where the descriptor came from.
    pub descriptor_source: DescriptorSource,
    /// The 8 presets, filled in.
    pub prompts: Vec<RenderedPrompt>,
}

/// One preset with the descriptor filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenderedPrompt {
    /// The preset's stable id.
    pub id: &'static str,
    /// The preset's label.
    pub label: &'static str,
    /// The preset's category.
    pub category: PromptCategory,
    /// The category's label.
    pub category_label: &'static str,
    /// The full prompt text.
    pub prompt: String,
}

impl RenderedPrompt {
    fn new(preset: &PromptPreset, descriptor: Descriptor) -> Self {
        Self {
            id: preset.id,
            label: preset.label,
            category: preset.category,
            category_label: preset.category.label(),
            prompt: preset.render(descriptor),
        }
    }
}

/// Looks up the actor's profile and renders the presets for its descriptor.
/// An actor with no profile is not an error: the descriptor then comes from the id.
pub async fn training_prompts(
    profiles: &impl ActorProfiles,
    actor_id: &ActorId,
) -> Result<TrainingPrompts, StoreError> {
    let profile = profiles.profile(actor_id).await?;
    let (descriptor, descriptor_source) = choose_descriptor(actor_id, profile.as_ref());
    Ok(TrainingPrompts {
        actor_id: actor_id.clone(),
        descriptor,
        descriptor_source,
        prompts: PRESETS
            .iter()
            .map(|preset| RenderedPrompt::new(preset, descriptor))
            .collect(),
    })
}
