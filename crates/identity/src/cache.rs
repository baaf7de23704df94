//! Verified access tokens, keyed by the SHA-256 of the token, kept until
//! they expire, so a steady stream of calls pays one signature check per
//! token rather than one per call.
//!
//! Bounded: each of the shards holds at most `capacity / SHARDS` entries;
//! a full shard first drops expired entries, then arbitrary ones. The key is
//! already a uniform hash, so the maps use its first eight bytes as their
//! hash instead of hashing it again.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};

use crate::authenticator::TokenFacts;
use crate::principal::Principal;

const SHARDS: usize = 16;

/// What a successful verification established, independent of the request.
#[derive(Debug)]
pub(crate) struct VerifiedToken {
    pub principal: Principal,
    /// Index of the issuer in the authenticator's list.
    pub issuer: usize,
    /// The issuer's key generation at verification time.
    pub generation: u64,
    /// Usable until this instant (Unix seconds): `exp` plus leeway.
    pub usable_until: u64,
    pub audiences: Box<[String]>,
    /// `cnf.jkt`: the token is DPoP-bound to this key.
    pub jkt: Option<String>,
    /// `cnf.x5t#S256`: the token is bound to this client certificate
    /// (RFC 8705).
    pub x5t: Option<String>,
    /// What the token claimed, for refusals after verification (wrong
    /// audience, missing proof, insufficient scope).
    pub facts: TokenFacts,
}

pub(crate) type TokenHash = [u8; 32];

type Shard = Mutex<HashMap<TokenHash, Arc<VerifiedToken>, BuildHasherDefault<PrefixHasher>>>;

pub(crate) struct TokenCache {
    shards: Vec<Shard>,
    per_shard: usize,
}

impl TokenCache {
    pub(crate) fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS);
        TokenCache {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::default()))
                .collect(),
            per_shard,
        }
    }

    fn shard(&self, key: &TokenHash) -> &Shard {
        &self.shards[usize::from(key[31]) % SHARDS]
    }

    pub(crate) fn get(&self, key: &TokenHash) -> Option<Arc<VerifiedToken>> {
        if self.per_shard == 0 {
            return None;
        }
        let shard = self.shard(key).lock().ok()?;
        shard.get(key).cloned()
    }

    pub(crate) fn insert(&self, key: TokenHash, token: Arc<VerifiedToken>, now: u64) {
        if self.per_shard == 0 {
            return;
        }
        let Ok(mut shard) = self.shard(&key).lock() else {
            return;
        };
        if shard.len() >= self.per_shard && !shard.contains_key(&key) {
            shard.retain(|_, t| t.usable_until >= now);
            while shard.len() >= self.per_shard {
                let Some(victim) = shard.keys().next().copied() else {
                    break;
                };
                shard.remove(&victim);
            }
        }
        shard.insert(key, token);
    }

    pub(crate) fn remove(&self, key: &TokenHash) {
        if let Ok(mut shard) = self.shard(key).lock() {
            shard.remove(key);
        }
    }

    pub(crate) fn clear(&self) {
        for shard in &self.shards {
            if let Ok(mut shard) = shard.lock() {
                shard.clear();
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|s| s.len()).unwrap_or(0))
            .sum()
    }
}

/// Hasher for keys that are already SHA-256 digests: the first eight bytes.
#[derive(Default)]
pub(crate) struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // `[u8; 32]` hashes as its bytes (arrays hash without a length
        // prefix); anything else mixes in, so this stays a correct Hasher.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
            if bytes.len() >= 8 {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(until: u64) -> Arc<VerifiedToken> {
        Arc::new(VerifiedToken {
            principal: Principal::anonymous(),
            issuer: 0,
            generation: 0,
            usable_until: until,
            audiences: Box::new([]),
            jkt: None,
            x5t: None,
            facts: TokenFacts::default(),
        })
    }

    #[test]
    fn bounded_and_expired_first() {
        let cache = TokenCache::new(SHARDS * 2);
        for i in 0..200u8 {
            let mut key = [i; 32];
            key[31] = 0; // all in one shard
            cache.insert(key, token(if i < 100 { 10 } else { 1000 }), 50);
        }
        assert!(cache.len() <= 2);
        let mut live = [199u8; 32];
        live[31] = 0;
        assert!(cache.get(&live).is_some(), "the newest entry is kept");
    }

    #[test]
    fn zero_capacity_disables() {
        let cache = TokenCache::new(0);
        cache.insert([1; 32], token(100), 0);
        assert!(cache.get(&[1; 32]).is_none());
    }
}
