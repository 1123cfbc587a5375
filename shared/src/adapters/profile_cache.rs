//! A short-lived cache of actor profiles in the execution environment: repeated calls for one
//! actor (the web UI lists the prompts each time its dialog opens) skip the DynamoDB read.
//! Only profiles found are kept, so a new actor is seen at once; an edited one within the TTL.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::actor::{ActorId, ActorProfile};
use crate::ports::{ActorProfiles, StoreError};

/// The most actors kept; beyond it, expired entries go first, then all of them.
const MAX_ENTRIES: usize = 1_024;

/// [`ActorProfiles`] that keeps each profile read for `ttl`.
#[derive(Debug)]
pub struct CachedActorProfiles<P> {
    source: P,
    ttl: Duration,
    entries: Mutex<HashMap<ActorId, (Instant, ActorProfile)>>,
}

impl<P> CachedActorProfiles<P> {
    /// Profiles from `source`, each kept for `ttl` (zero keeps none).
    pub fn new(source: P, ttl: Duration) -> Self {
        Self {
            source,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn fresh(&self, actor_id: &ActorId) -> Option<ActorProfile> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(actor_id)
            .filter(|(read_at, _)| read_at.elapsed() < self.ttl)
            .map(|(_, profile)| profile.clone())
    }

    fn keep(&self, actor_id: &ActorId, profile: &ActorProfile) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (read_at, _)| read_at.elapsed() < self.ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(actor_id.clone(), (Instant::now(), profile.clone()));
    }
}

impl<P: ActorProfiles> ActorProfiles for CachedActorProfiles<P> {
    async fn profile(&self, actor_id: &ActorId) -> Result<Option<ActorProfile>, StoreError> {
        if let Some(profile) = self.fresh(actor_id) {
            return Ok(Some(profile));
        }
        let profile = self.source.profile(actor_id).await?;
        if let Some(profile) = &profile
            && !self.ttl.is_zero()
        {
            self.keep(actor_id, profile);
        }
        Ok(profile)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// Answers from a fixed table, counting its reads; fails for `broken`.
    struct CountingProfiles {
        reads: AtomicU32,
    }

    impl ActorProfiles for CountingProfiles {
        async fn profile(&self, actor_id: &ActorId) -> Result<Option<ActorProfile>, StoreError> {
            let read = self.reads.fetch_add(1, Ordering::SeqCst) + 1;
            match actor_id.as_str() {
                "broken" => Err(StoreError {
                    operation: "GetItem",
                    detail: "down".to_owned(),
                }),
                "nobody" => Ok(None),
                _ => Ok(Some(ActorProfile {
                    actor_name: Some(format!("read {read}")),
                    ..ActorProfile::default()
                })),
            }
        }
    }

    fn cache(ttl: Duration) -> CachedActorProfiles<CountingProfiles> {
        CachedActorProfiles::new(
            CountingProfiles {
                reads: AtomicU32::new(0),
            },
            ttl,
        )
    }

    fn id(text: &str) -> ActorId {
        ActorId::parse(text).expect("a valid id")
    }

    async fn name(cache: &CachedActorProfiles<CountingProfiles>, actor: &str) -> Option<String> {
        let profile = cache.profile(&id(actor)).await.expect("a read");
        profile.and_then(|p| p.actor_name)
    }

    #[tokio::test]
    async fn a_profile_is_read_once_within_its_ttl_and_again_after() {
        let cache = cache(Duration::from_millis(30));
        assert_eq!(name(&cache, "actor_1").await.as_deref(), Some("read 1"));
        assert_eq!(name(&cache, "actor_1").await.as_deref(), Some("read 1"));
        assert_eq!(name(&cache, "actor_2").await.as_deref(), Some("read 2"));
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(name(&cache, "actor_1").await.as_deref(), Some("read 3"));
        assert_eq!(cache.source.reads.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn absent_profiles_and_failures_are_not_kept() {
        let cache = cache(Duration::from_secs(60));
        assert_eq!(name(&cache, "nobody").await, None);
        assert_eq!(name(&cache, "nobody").await, None);
        assert!(cache.profile(&id("broken")).await.is_err());
        assert!(cache.profile(&id("broken")).await.is_err());
        assert_eq!(cache.source.reads.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_zero_ttl_reads_every_time() {
        let cache = cache(Duration::ZERO);
        name(&cache, "actor_1").await;
        assert_eq!(name(&cache, "actor_1").await.as_deref(), Some("read 2"));
    }

    #[tokio::test]
    async fn a_full_cache_makes_room() {
        let cache = cache(Duration::from_secs(60));
        for i in 0..=MAX_ENTRIES {
            name(&cache, &format!("actor_{i}")).await;
        }
        let kept = cache
            .entries
            .lock()
            .map(|entries| entries.len())
            .unwrap_or(0);
        assert!((1..=MAX_ENTRIES).contains(&kept), "{kept} entries");
        assert_eq!(
            name(&cache, &format!("actor_{MAX_ENTRIES}"))
                .await
                .as_deref(),
            Some(&*format!("read {}", MAX_ENTRIES + 1))
        );
    }
}
