//! The catalog of preset training prompts.
//!
//! Each preset is written for an image-editing model (flux-kontext-pro): it describes the new
//! scene and style, names the subject with the actor's descriptor, and asks the model to keep
//! the face and identity of the person in the input image. The texts avoid other words that
//! contain "man" ("human", "manga", "performance") so the subject word is never ambiguous.

use serde::Serialize;

use super::actor::Descriptor;

/// The placeholder that a preset's scene text uses for the subject.
const DESCRIPTOR_PLACEHOLDER: &str = "{descriptor}";

/// The sentence every preset ends with.
const KEEP_IDENTITY: &str = "Keep the exact face, facial features, skin tone, hairstyle and \
identity of the person in the input image.";

/// A group of presets, as the web UI shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptCategory {
    /// Photographs in dramatic or natural light.
    Photorealistic,
    /// Black-and-white drawing and print techniques.
    BwStylized,
    /// Colour illustration and painting techniques.
    ColorStylized,
}

impl PromptCategory {
    /// The category's id, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Photorealistic => "photorealistic",
            Self::BwStylized => "bw_stylized",
            Self::ColorStylized => "color_stylized",
        }
    }

    /// The label the web UI shows for the category.
    pub fn label(self) -> &'static str {
        match self {
            Self::Photorealistic => "Photorealistic",
            Self::BwStylized => "B&W Stylized",
            Self::ColorStylized => "Color Stylized",
        }
    }
}

/// One preset prompt, before the descriptor is filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptPreset {
    /// The stable id the web UI sends back as `prompt_id`.
    pub id: &'static str,
    /// A short human label.
    pub label: &'static str,
    /// The category the preset belongs to.
    pub category: PromptCategory,
    /// The scene and style, with `{descriptor}` where the subject goes.
    scene: &'static str,
    /// The caption of the preset's images: its style and scene, with the trigger word
    /// ([`TRIGGER_TOKEN`](super::caption::TRIGGER_TOKEN)) for the person and nothing of the identity clause.
    pub caption: &'static str,
}

impl PromptPreset {
    /// The full prompt text for an actor with this descriptor.
    pub fn render(&self, descriptor: Descriptor) -> String {
        let scene = self
            .scene
            .replace(DESCRIPTOR_PLACEHOLDER, descriptor.as_str());
        format!("{scene} {KEEP_IDENTITY}")
    }
}

/// The 8 presets, in the order the web UI lists them.
pub const PRESETS: [PromptPreset; 8] = [
    PromptPreset {
        id: "photo_rain_street_run",
        label: "Rain-slick street run",
        category: PromptCategory::Photorealistic,
        scene: "Turn this photo into a cinematic photograph of the {descriptor} running down a \
rain-slick city street at night, neon signs reflected in the puddles, dramatic rim light, \
motion in the falling rain.",
        caption: "[trigger] running down a rain-slick city street at night, cinematic photograph, neon signs reflected in the puddles, dramatic rim light, falling rain",
    },
    PromptPreset {
        id: "photo_window_light_closeup",
        label: "Window light close-up",
        category: PromptCategory::Photorealistic,
        scene: "Turn this photo into a photorealistic close-up portrait of the {descriptor} lit \
by soft window light from one side, shallow depth of field, natural skin texture, a calm \
expression, a muted interior behind.",
        caption: "photorealistic close-up portrait of [trigger], soft window light from one side, shallow depth of field, calm expression, muted interior background",
    },
    PromptPreset {
        id: "bw_pen_ink",
        label: "Pen & ink",
        category: PromptCategory::BwStylized,
        scene: "Redraw this photo as a black-and-white pen and ink illustration of the \
{descriptor}: confident contour lines, cross-hatching for the shadows, clean white paper, no \
gray wash.",
        caption: "black-and-white pen and ink illustration of [trigger], confident contour lines, cross-hatched shadows, clean white paper",
    },
    PromptPreset {
        id: "bw_charcoal",
        label: "Charcoal sketch",
        category: PromptCategory::BwStylized,
        scene: "Redraw this photo as a black-and-white charcoal drawing of the {descriptor} on \
textured paper: soft smudged shadows, bold dark strokes, visible paper grain, loose \
expressive edges.",
        caption: "black-and-white charcoal drawing of [trigger] on textured paper, soft smudged shadows, bold dark strokes, visible paper grain, loose expressive edges",
    },
    PromptPreset {
        id: "bw_woodcut",
        label: "Woodcut print",
        category: PromptCategory::BwStylized,
        scene: "Turn this photo into a black-and-white woodcut print of the {descriptor}: carved \
gouge marks, high-contrast solid blacks, bold graphic shapes, the ink texture of a \
hand-pulled print.",
        caption: "black-and-white woodcut print of [trigger], carved gouge marks, high-contrast solid blacks, bold graphic shapes, hand-pulled ink texture",
    },
    PromptPreset {
        id: "color_comic_book",
        label: "Comic book",
        category: PromptCategory::ColorStylized,
        scene: "Redraw this photo as a full-color comic book panel of the {descriptor}: bold \
black inks, flat vivid colors, halftone dot shading, a dynamic pose against a simple city \
backdrop.",
        caption: "full-color comic book panel of [trigger], bold black inks, flat vivid colors, halftone dot shading, dynamic pose, simple city backdrop",
    },
    PromptPreset {
        id: "color_watercolor",
        label: "Watercolor",
        category: PromptCategory::ColorStylized,
        scene: "Paint this photo as a loose watercolor portrait of the {descriptor}: soft washes \
that bleed into each other, visible paper texture, a light pencil underdrawing, a gentle warm \
palette.",
        caption: "loose watercolor portrait of [trigger], soft washes bleeding into each other, visible paper texture, light pencil underdrawing, gentle warm palette",
    },
    PromptPreset {
        id: "color_gouache",
        label: "Gouache painting",
        category: PromptCategory::ColorStylized,
        scene: "Paint this photo as an opaque gouache illustration of the {descriptor}: matte \
flat color shapes, visible brush strokes, a rich saturated palette, a simple outdoor scene in \
afternoon light.",
        caption: "opaque gouache illustration of [trigger], matte flat color shapes, visible brush strokes, rich saturated palette, simple outdoor scene in afternoon light",
    },
];

/// The preset with this id, if there is one.
pub fn preset(id: &str) -> Option<&'static PromptPreset> {
    PRESETS.iter().find(|preset| preset.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::caption::TRIGGER_TOKEN;

    const ALL_DESCRIPTORS: [Descriptor; 3] =
        [Descriptor::Man, Descriptor::Woman, Descriptor::Person];

    #[test]
    fn eight_presets_in_three_categories_with_unique_ids() {
        let count = |category| PRESETS.iter().filter(|p| p.category == category).count();
        assert_eq!(count(PromptCategory::Photorealistic), 2);
        assert_eq!(count(PromptCategory::BwStylized), 3);
        assert_eq!(count(PromptCategory::ColorStylized), 3);
        let mut ids: Vec<_> = PRESETS.iter().map(|p| p.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 8);
    }

    #[test]
    fn ids_are_the_stable_ones_the_ui_knows() {
        let ids: Vec<_> = PRESETS.iter().map(|p| p.id).collect();
        assert_eq!(
            ids,
            [
                "photo_rain_street_run",
                "photo_window_light_closeup",
                "bw_pen_ink",
                "bw_charcoal",
                "bw_woodcut",
                "color_comic_book",
                "color_watercolor",
                "color_gouache",
            ]
        );
        assert_eq!(
            preset("bw_charcoal").map(|p| p.label),
            Some("Charcoal sketch")
        );
        assert!(preset("unknown").is_none());
    }

    #[test]
    fn every_scene_names_the_subject_and_every_prompt_keeps_identity() {
        for preset in &PRESETS {
            assert!(
                preset.scene.contains(DESCRIPTOR_PLACEHOLDER),
                "{}",
                preset.id
            );
            for descriptor in ALL_DESCRIPTORS {
                let text = preset.render(descriptor);
                assert!(!text.contains('{'), "{}: unfilled placeholder", preset.id);
                assert!(
                    text.contains(&format!("of the {} ", descriptor.as_str()))
                        || text.contains(&format!("of the {}:", descriptor.as_str())),
                    "{}: {text}",
                    preset.id
                );
                assert!(text.ends_with(KEEP_IDENTITY), "{}", preset.id);
            }
        }
    }

    #[test]
    fn captions_name_the_style_and_scene_and_leave_the_person_to_the_trigger() {
        for preset in &PRESETS {
            let caption = preset.caption.to_ascii_lowercase();
            assert_eq!(caption.matches(TRIGGER_TOKEN).count(), 1, "{}", preset.id);
            for identity in ["face", "identity", "skin", "hair", "keep the", "person"] {
                assert!(!caption.contains(identity), "{}: {caption}", preset.id);
            }
            let words = caption.split(|c: char| !c.is_ascii_alphabetic());
            assert!(
                !words.clone().any(|word| word == "man" || word == "woman"),
                "{}: {caption}",
                preset.id
            );
            // The style's and the scene's words are the prompt's own.
            let scene = preset.scene.to_ascii_lowercase();
            let shared = words
                .filter(|word| word.len() > 4 && scene.contains(word))
                .count();
            assert!(shared >= 4, "{}: {caption}", preset.id);
        }
    }

    #[test]
    fn the_subject_word_is_the_only_man_in_any_text() {
        for preset in &PRESETS {
            let neutral = preset.render(Descriptor::Person).to_ascii_lowercase();
            assert!(!neutral.contains("man"), "{}: {neutral}", preset.id);
            let male = preset.render(Descriptor::Man).to_ascii_lowercase();
            assert_eq!(male.matches("man").count(), 1, "{}: {male}", preset.id);
            assert!(!male.contains("woman"), "{}", preset.id);
        }
    }
}
