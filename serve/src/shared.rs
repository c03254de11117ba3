//! Shared endpoints: many models on one server, loaded on their first request and unloaded
//! least recently used when the memory budget would be exceeded.
//!
//! A [`Slot`] is a registered model version: a few hundred bytes until it is asked for. Its
//! first request loads it while requests to other models go on; requests to the same model
//! wait for that one load. [`Residency`] keeps the loaded slots within
//! `limits.memory_budget_bytes`, counting each model by the weights of its plan.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::batch::Batcher;
use crate::config::ModelConfig;
use crate::error::ServeError;

/// What a loaded model takes beyond its weights (its graph and plan), as
/// [`crate::model::Model::resident_bytes`] counts it.
pub const OVERHEAD: u64 = 16 << 10;
/// How long a model that failed to load answers with that failure before it is tried again.
const FAILURE_MEMORY: Duration = Duration::from_secs(10);

/// A registered model version of a shared endpoint: loaded on demand.
pub struct Slot {
    pub config: ModelConfig,
    /// Loaded when registered and never unloaded.
    pub pinned: bool,
    resident: RwLock<Option<Arc<Batcher>>>,
    loading: tokio::sync::Mutex<()>,
    /// Milliseconds since the server started, at the last request.
    last_used: AtomicU64,
    /// What it takes when loaded: measured at its last load, else 0 (unknown).
    bytes: AtomicU64,
    failed: Mutex<Option<(Instant, String)>>,
}

impl Slot {
    pub fn new(config: ModelConfig, pinned: bool) -> Slot {
        Slot {
            config,
            pinned,
            resident: RwLock::new(None),
            loading: tokio::sync::Mutex::new(()),
            last_used: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            failed: Mutex::new(None),
        }
    }
    pub fn name(&self) -> &str {
        &self.config.name
    }
    pub fn version(&self) -> &str {
        self.config.version.as_deref().unwrap_or("")
    }
    /// The loaded model, when it is loaded.
    pub fn resident(&self) -> Option<Arc<Batcher>> {
        self.resident.read().expect("lock").clone()
    }
    /// Bytes it takes (or took at its last load).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
    /// Why it could not be loaded recently, if it could not.
    pub fn failure(&self) -> Option<String> {
        let f = self.failed.lock().expect("lock");
        f.as_ref()
            .filter(|(at, _)| at.elapsed() < FAILURE_MEMORY)
            .map(|(_, r)| r.clone())
    }
}

/// Counts of what [`Residency`] did, for metrics.
#[derive(Debug)]
pub enum Event {
    Loaded { seconds: f64 },
    Evicted,
}

/// The loaded slots and the memory they take.
pub struct Residency {
    budget: Option<u64>,
    epoch: Instant,
    state: Mutex<Resident>,
}

#[derive(Default)]
struct Resident {
    slots: HashMap<(String, String), Arc<Slot>>,
    used: u64,
}

/// Why a model cannot be loaded now.
pub enum NoRoom {
    /// It does not fit even with every unpinned model unloaded.
    Never { need: u64, budget: u64, pinned: u64 },
}

impl Residency {
    pub fn new(budget: Option<u64>) -> Residency {
        Residency {
            budget,
            epoch: Instant::now(),
            state: Mutex::new(Resident::default()),
        }
    }
    pub fn budget(&self) -> Option<u64> {
        self.budget
    }
    /// Bytes taken by loaded slots, and how many are loaded.
    pub fn used(&self) -> (u64, usize) {
        let s = self.state.lock().expect("lock");
        (s.used, s.slots.len())
    }
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
    pub fn touch(&self, slot: &Slot) {
        slot.last_used.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Makes room for `need` more bytes for `slot` and counts them as used: unloads the
    /// least recently used unpinned slots (never `slot` itself) until they fit. The evicted
    /// slots come back, for metrics.
    fn make_room(
        &self,
        s: &mut Resident,
        slot: &Slot,
        need: u64,
    ) -> Result<Vec<Arc<Slot>>, NoRoom> {
        let Some(budget) = self.budget else {
            s.used += need;
            return Ok(Vec::new());
        };
        let key = (slot.name().to_string(), slot.version().to_string());
        let pinned: u64 = s
            .slots
            .iter()
            .filter(|(k, x)| x.pinned && **k != key)
            .map(|(_, x)| x.bytes())
            .sum();
        let own = s.slots.get(&key).map_or(0, |x| x.bytes());
        if pinned + own + need > budget {
            return Err(NoRoom::Never {
                need: own + need,
                budget,
                pinned,
            });
        }
        let mut evicted = Vec::new();
        while s.used + need > budget {
            let Some(victim) = s
                .slots
                .iter()
                .filter(|(k, x)| !x.pinned && **k != key)
                .min_by_key(|(_, x)| x.last_used.load(Ordering::Relaxed))
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            let x = s.slots.remove(&victim).expect("present");
            s.used -= x.bytes().min(s.used);
            *x.resident.write().expect("lock") = None;
            evicted.push(x);
        }
        s.used += need;
        Ok(evicted)
    }

    /// The slot's loaded model: at once when it is loaded, else after loading it with `load`
    /// (one load per slot at a time; requests to other slots do not wait). Room is made
    /// first for what it took at its last load, or for `file_size` plus a little; `load`
    /// answers the model and what it measured it to take. `on` hears of loads and
    /// evictions.
    pub async fn ensure<S, L>(
        &self,
        slot: &Arc<Slot>,
        file_size: S,
        load: L,
        on: impl Fn(&Slot, Event),
    ) -> Result<Arc<Batcher>, ServeError>
    where
        S: std::future::Future<Output = Result<u64, String>>,
        L: std::future::Future<Output = Result<(Arc<Batcher>, u64), String>>,
    {
        self.touch(slot);
        if let Some(b) = slot.resident() {
            return Ok(b);
        }
        let failed = |reason: &str| {
            ServeError::Unavailable(format!(
                "model {} v{} failed to load: {reason}",
                slot.name(),
                slot.version()
            ))
        };
        if let Some(reason) = slot.failure() {
            return Err(failed(&reason));
        }
        let _one = slot.loading.lock().await;
        if let Some(b) = slot.resident() {
            return Ok(b);
        }
        let started = Instant::now();
        let remember = |reason: &str| {
            *slot.failed.lock().expect("lock") = Some((Instant::now(), reason.to_string()));
        };
        let guess = match slot.bytes() {
            0 => match file_size.await {
                Ok(n) => first_guess(n),
                Err(reason) => {
                    remember(&reason);
                    return Err(failed(&reason));
                }
            },
            n => n,
        };
        self.reserve(slot, guess, &on)?;
        let (batcher, bytes) = match load.await {
            Ok(b) => b,
            Err(reason) => {
                self.release(guess);
                remember(&reason);
                return Err(failed(&reason));
            }
        };
        slot.bytes.store(bytes, Ordering::Relaxed);
        self.release(guess);
        if let Err(e) = self.reserve(slot, bytes, &on) {
            remember(&e.to_string());
            return Err(e);
        }
        {
            let mut s = self.state.lock().expect("lock");
            let key = (slot.name().to_string(), slot.version().to_string());
            s.slots.insert(key, slot.clone());
            *slot.resident.write().expect("lock") = Some(batcher.clone());
        }
        *slot.failed.lock().expect("lock") = None;
        self.touch(slot);
        on(
            slot,
            Event::Loaded {
                seconds: started.elapsed().as_secs_f64(),
            },
        );
        Ok(batcher)
    }

    fn release(&self, bytes: u64) {
        let mut s = self.state.lock().expect("lock");
        s.used -= bytes.min(s.used);
    }

    fn reserve(
        &self,
        slot: &Slot,
        bytes: u64,
        on: &impl Fn(&Slot, Event),
    ) -> Result<(), ServeError> {
        let evicted = {
            let mut s = self.state.lock().expect("lock");
            self.make_room(&mut s, slot, bytes)
        };
        match evicted {
            Ok(ev) => {
                for x in ev {
                    on(&x, Event::Evicted);
                }
                Ok(())
            }
            Err(NoRoom::Never {
                need,
                budget,
                pinned,
            }) => Err(ServeError::NoRoom(format!(
                "model {} v{} needs {} but the memory budget is {} ({} of it pinned); raise limits.memory_budget_bytes (memory_budget) or unpin models",
                slot.name(),
                slot.version(),
                human(need),
                human(budget),
                human(pinned)
            ))),
        }
    }

    /// Forgets slots that are no longer registered (detached), unloading them.
    pub fn retain(&self, keep: impl Fn(&(String, String), &Arc<Slot>) -> bool) -> Vec<Arc<Slot>> {
        let mut s = self.state.lock().expect("lock");
        let gone: Vec<(String, String)> = s
            .slots
            .iter()
            .filter(|(k, x)| !keep(k, x))
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::new();
        for k in gone {
            let x = s.slots.remove(&k).expect("present");
            s.used -= x.bytes().min(s.used);
            *x.resident.write().expect("lock") = None;
            out.push(x);
        }
        out
    }

    /// Resident slots, for metrics.
    pub fn resident_slots(&self) -> Vec<Arc<Slot>> {
        self.state
            .lock()
            .expect("lock")
            .slots
            .values()
            .cloned()
            .collect()
    }
}

/// What a model is assumed to take before its first load: its file plus a little.
pub fn first_guess(file_bytes: u64) -> u64 {
    file_bytes + OVERHEAD
}

/// Bytes in a readable form, for messages.
pub fn human(b: u64) -> String {
    const U: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let (mut v, mut i) = (b as f64, 0);
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}
