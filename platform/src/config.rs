//! Configuration, loaded once at startup: built-in defaults, then an
//! optional TOML file, then environment variables `DISSEMINATION_SECTION__KEY`.
//! Nothing reads the environment after startup. Every timer and retry
//! schedule lives here so tests can shrink them.
//!
//! Each section's keys, documented where they are declared, are in a
//! submodule named after the section, re-exported here.

use anyhow::Context;
use figment::{
    providers::{Env, Format, Toml},
    Figment,
};
use model::Priority;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;

mod api;
mod auth;
mod delivery;
mod events;
mod repository;
mod s3;
mod tape;
mod telemetry;
mod temporal;
mod timings;
mod worker;

pub use api::ApiConfig;
pub use auth::{AuthConfig, DEV_AUDIENCE, DEV_ISSUER};
pub use delivery::{BagitConfig, ClientConfig};
pub use events::{EventsConfig, RetentionConfig};
pub use repository::{CatalogConfig, LocationConfig, RepositoryConfig, S3LocationConfig};
pub use s3::S3Config;
pub use tape::{TapeConfig, TapeLocationConfig};
pub use telemetry::{LogConfig, TelemetryConfig};
pub use temporal::TemporalConfig;
pub use timings::Timings;
pub use worker::{BandConfig, SizeClass, WorkerConfig};

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Config {
    pub temporal: TemporalConfig,
    pub api: ApiConfig,
    pub auth: AuthConfig,
    pub catalog: CatalogConfig,
    pub repository: RepositoryConfig,
    pub s3: S3Config,
    pub worker: WorkerConfig,
    pub bands: Vec<BandConfig>,
    pub timings: Timings,
    /// Per-client delivery settings, keyed by OAuth client id. Operator
    /// configuration only: never taken from a request.
    pub clients: BTreeMap<String, ClientConfig>,
    pub log: LogConfig,
    pub telemetry: TelemetryConfig,
    pub bagit: BagitConfig,
    pub tape: TapeConfig,
    pub events: EventsConfig,
    pub retention: RetentionConfig,
}

/// Secrets are written out only when a whole configuration is serialized
/// (a configuration file for a process this one starts, as the tests do).
fn expose<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose_secret())
}

fn expose_opt<S: Serializer>(secret: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(v) => s.serialize_some(v.expose_secret()),
        None => s.serialize_none(),
    }
}

impl Config {
    /// Defaults ← `path` (if given) ← environment.
    pub fn load(path: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::new();
        if let Some(path) = path {
            anyhow::ensure!(path.exists(), "config file {} not found", path.display());
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(Env::prefixed("DISSEMINATION_").split("__"));
        let mut config: Config = figment.extract().context("reading configuration")?;
        config.fill_defaults();
        config.validate()?;
        Ok(config)
    }

    /// The configuration that environment variables alone give (as in a
    /// container): `vars` as `DISSEMINATION_SECTION__KEY` pairs, read the way
    /// `load` reads the process's environment.
    pub fn from_env_vars(vars: impl IntoIterator<Item = (String, String)>) -> anyhow::Result<Self> {
        use figment::value::{Dict, Value};
        let mut root = Dict::new();
        for (key, value) in vars {
            let Some(path) = key.strip_prefix("DISSEMINATION_") else {
                continue;
            };
            let mut dict = &mut root;
            let mut parts = path.split("__").map(str::to_ascii_lowercase).peekable();
            while let Some(part) = parts.next() {
                if parts.peek().is_none() {
                    let parsed = value.parse::<Value>().unwrap_or_else(|e| match e {});
                    dict.insert(part, parsed);
                    break;
                }
                let entry = dict.entry(part).or_insert_with(|| Dict::new().into());
                let Value::Dict(_, inner) = entry else {
                    anyhow::bail!("{key} sets a key below a value");
                };
                dict = inner;
            }
        }
        let mut config: Config = Figment::from(figment::providers::Serialized::defaults(root))
            .extract()
            .context("reading configuration")?;
        config.fill_defaults();
        config.validate()?;
        Ok(config)
    }

    /// Defaults that depend on other values.
    pub fn fill_defaults(&mut self) {
        if self.bands.is_empty() {
            self.bands = BandConfig::defaults();
        }
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        let mut last = 0u8;
        for band in &self.bands {
            anyhow::ensure!(
                band.max_priority > last && band.max_priority <= 100,
                "bands must have increasing max_priority within 1..=100"
            );
            anyhow::ensure!(band.slots > 0, "band {} needs at least one slot", band.name);
            anyhow::ensure!(
                band.batch_slots() > 0,
                "band {} needs at least one batch slot",
                band.name
            );
            last = band.max_priority;
        }
        anyhow::ensure!(last == 100, "the last band must end at priority 100");
        // A band named like another queue (`small`, `steps`, `batched`, …)
        // would have two kinds of work share one queue's slots.
        let mut queues: Vec<String> = self
            .dissemination_queues()
            .into_iter()
            .map(|q| q.name)
            .collect();
        queues.extend([
            self.batch_queue(),
            self.lock_queue(),
            self.held_lock_queue(),
            self.steps_queue(),
            self.batched_steps_queue(),
            self.staging_queue(),
        ]);
        let named = queues.len();
        queues.sort();
        queues.dedup();
        anyhow::ensure!(
            queues.len() == named,
            "two task queues share a name: a band's name must differ from the others' and \
             from small, medium, large, batches, locks, steps and staging"
        );
        anyhow::ensure!(
            self.worker.local_slots > 0
                && self.worker.batch_local_slots > 0
                && self.worker.steps_slots > 0
                && self.worker.batch_steps_slots > 0
                && self.worker.small_slots > 0
                && self.worker.medium_slots > 0
                && self.worker.large_slots > 0,
            "worker.local_slots, worker.batch_local_slots, worker.steps_slots, \
             worker.batch_steps_slots, worker.small_slots, worker.medium_slots \
             and worker.large_slots must be positive"
        );
        anyhow::ensure!(
            (0..=19).contains(&self.worker.batch_nice),
            "worker.batch_nice must be from 0 to 19"
        );
        // A class whose bound is not over the one below it would never
        // take an AIP: a mistake, not a choice (0 turns a class off).
        let bounds: Vec<u64> = SizeClass::ALL
            .into_iter()
            .map(|class| self.class_max_bytes(class))
            .filter(|&max| max > 0)
            .collect();
        anyhow::ensure!(
            bounds.windows(2).all(|w| w[0] < w[1]),
            "worker.small_max_bytes, worker.medium_max_bytes and worker.large_max_bytes \
             must each be over the one before (or 0, for no such class)"
        );
        anyhow::ensure!(
            self.timings.link_lifetime_secs <= 7 * 24 * 3600,
            "timings.link_lifetime_secs is over the 7-day SigV4 limit"
        );
        anyhow::ensure!(
            self.timings.link_lifetime_secs >= 1,
            "timings.link_lifetime_secs must be positive"
        );
        anyhow::ensure!(
            self.api.lock_start_delay_secs <= 366 * 24 * 3600,
            "api.lock_start_delay_secs is over a year (a lock's start timer stays in Temporal that long)"
        );
        anyhow::ensure!(
            self.s3.part_size_mib >= 5,
            "s3.part_size_mib must be at least 5 (the S3 minimum part size)"
        );
        self.tape.validate()?;
        self.repository.validate()
    }

    /// The band a priority falls into.
    pub fn band_for(&self, priority: Priority) -> &BandConfig {
        self.bands
            .iter()
            .find(|b| priority.get() <= b.max_priority)
            .or(self.bands.last())
            .expect("validated: at least one band")
    }

    /// The task queue a band's workflows and activities run on.
    pub fn band_queue(&self, band: &BandConfig) -> String {
        format!("{}-{}", self.temporal.task_queue_prefix, band.name)
    }

    /// The task queue of a band's batch items: polled with workflow-task,
    /// local and activity slots of their own, so a collection's items never
    /// hold the slots a single request of the band starts on.
    pub fn batched_queue(&self, band: &BandConfig) -> String {
        format!("{}-{}-batched", self.temporal.task_queue_prefix, band.name)
    }

    /// The queue of the batch workflows (and their webhook).
    pub fn batch_queue(&self) -> String {
        format!("{}-batches", self.temporal.task_queue_prefix)
    }

    /// The queue of the per-(client, AIP) lock workflows of executions
    /// before flow 10 (a worker runs them until they are released).
    pub fn lock_queue(&self) -> String {
        format!("{}-locks", self.temporal.task_queue_prefix)
    }

    /// The queue of the locks from flow 10 on. A lock only holds its
    /// workflow id (Temporal's uniqueness is the check), starts with a delay
    /// and is released by terminating it before, so it costs no workflow
    /// task; the workers poll the queue for one held longer (or started
    /// without a delay), so no task stays in its backlog.
    pub fn held_lock_queue(&self) -> String {
        format!("{}-locks-held", self.temporal.task_queue_prefix)
    }

    /// The queue of the short steps (`finish`, webhook attempts,
    /// clean-ups): polled with `worker.steps_slots` of its own, so they
    /// never wait behind long transfers for a band's slots. Priority and
    /// fairness are the execution's, as on its band's queue.
    pub fn steps_queue(&self) -> String {
        format!("{}-steps", self.temporal.task_queue_prefix)
    }

    /// The steps queue of batch items: `worker.batch_steps_slots` of its
    /// own, on the batch items' threads.
    pub fn batched_steps_queue(&self) -> String {
        format!("{}-steps-batched", self.temporal.task_queue_prefix)
    }

    /// The size class of an AIP of `total_bytes`, whose queues it runs on
    /// instead of its band's: `None` for one that moves inside its
    /// workflow task (up to `worker.local_max_bytes`) or one over every
    /// class's bound (terabytes), which take their band's.
    pub fn size_class(&self, total_bytes: u64) -> Option<SizeClass> {
        if total_bytes <= self.worker.local_max_bytes {
            return None;
        }
        SizeClass::ALL
            .into_iter()
            .find(|class| total_bytes <= self.class_max_bytes(*class))
    }

    fn class_max_bytes(&self, class: SizeClass) -> u64 {
        match class {
            SizeClass::Small => self.worker.small_max_bytes,
            SizeClass::Medium => self.worker.medium_max_bytes,
            SizeClass::Large => self.worker.large_max_bytes,
        }
    }

    /// Transfers a worker runs at once on each of the class's queues.
    pub fn class_slots(&self, class: SizeClass) -> usize {
        match class {
            SizeClass::Small => self.worker.small_slots,
            SizeClass::Medium => self.worker.medium_slots,
            SizeClass::Large => self.worker.large_slots,
        }
    }

    /// A size class's queue: every band's single requests of that size
    /// (`{prefix}-small`, `{prefix}-medium`, `{prefix}-large`), served
    /// urgent first (the execution's priority key) with slots of its own,
    /// so such an AIP never waits behind its band's longer transfers;
    /// `batched`, the batch items' (`{prefix}-small-batched`, …), polled
    /// with as many slots on the batch items' threads, so a collection's
    /// photographs never wait behind its own terabyte items, nor hold the
    /// slots of another client's single request.
    pub fn class_queue(&self, class: SizeClass, batched: bool) -> String {
        let prefix = &self.temporal.task_queue_prefix;
        let suffix = if batched { "-batched" } else { "" };
        format!("{prefix}-{}{suffix}", class.name())
    }

    /// The queue of a size class's single requests from the most urgent
    /// band (`{prefix}-large-urgent`, …), polled with
    /// `worker.urgent_class_slots` of its own, so that an urgent AIP of a
    /// class never waits for a less urgent transfer of its class to end;
    /// `None` when there is none (a single band, or no such slot).
    pub fn urgent_class_queue(&self, class: SizeClass) -> Option<String> {
        let band = self.urgent_band()?;
        let prefix = &self.temporal.task_queue_prefix;
        Some(format!("{prefix}-{}-{}", class.name(), band.name))
    }

    /// The band whose single requests have each class's queue of their own.
    fn urgent_band(&self) -> Option<&BandConfig> {
        let reserved = self.bands.len() > 1 && self.worker.urgent_class_slots > 0;
        self.bands.first().filter(|_| reserved)
    }

    /// The task queue a dissemination runs on, whose slots its transfer
    /// takes: its size class's (`size_class`) if it has one (the most
    /// urgent band's own, for its single requests), else its band's; a
    /// batch item's (`batched`) the batch items' queue of each.
    pub fn request_queue(&self, priority: Priority, total_bytes: u64, batched: bool) -> String {
        let band = self.band_for(priority);
        match (self.size_class(total_bytes), batched) {
            (Some(class), false) => match self.urgent_class_queue(class) {
                Some(queue) if self.urgent_band() == Some(band) => queue,
                _ => self.class_queue(class, false),
            },
            (Some(class), true) => self.class_queue(class, true),
            (None, false) => self.band_queue(band),
            (None, true) => self.batched_queue(band),
        }
    }

    /// Every queue a dissemination can run on (`request_queue`): what the
    /// workers poll, the API counts queue positions on and `validate`
    /// checks for names that collide.
    pub fn dissemination_queues(&self) -> Vec<DisseminationQueue> {
        let queue = |name, slots, batched| DisseminationQueue {
            name,
            slots,
            batched,
        };
        let bands = self.bands.iter().flat_map(|band| {
            [
                queue(self.band_queue(band), band.slots, false),
                queue(self.batched_queue(band), band.batch_slots(), true),
            ]
        });
        let classes = SizeClass::ALL.into_iter().flat_map(|class| {
            let slots = self.class_slots(class);
            let urgent = self.urgent_class_queue(class);
            [
                Some(queue(self.class_queue(class, false), slots, false)),
                Some(queue(self.class_queue(class, true), slots, true)),
                urgent.map(|name| queue(name, self.worker.urgent_class_slots, false)),
            ]
            .into_iter()
            .flatten()
        });
        bands.chain(classes).collect()
    }

    /// The queue of the `stage` steps (waiting for tape): polled with
    /// slots of its own, so a recall holds no transfer slot.
    pub fn staging_queue(&self) -> String {
        format!("{}-staging", self.temporal.task_queue_prefix)
    }

    pub fn client(&self, client_id: &str) -> Option<&ClientConfig> {
        self.clients.get(client_id)
    }

    /// The bucket a client's deliveries go to.
    pub fn client_bucket(&self, client_id: &str) -> String {
        self.client(client_id)
            .and_then(|c| c.bucket.clone())
            .unwrap_or_else(|| self.s3.default_bucket.clone())
    }
}

/// A task queue disseminations run on, with the activity slots each
/// worker polls it with; `batched`: a batch's items', polled on the batch
/// items' threads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisseminationQueue {
    pub name: String,
    pub slots: usize,
    pub batched: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::catalog::LocationKind;

    #[test]
    fn defaults_are_valid_and_bands_cover_every_priority() {
        let mut c = Config::default();
        c.fill_defaults();
        c.validate().expect("defaults valid");
        for p in 1..=100 {
            let band = c.band_for(Priority::new(p).expect("in range"));
            assert!(p as u8 <= band.max_priority);
        }
        assert_eq!(c.band_for(Priority::new(1).expect("ok")).name, "urgent");
        assert_eq!(c.band_for(Priority::new(50).expect("ok")).name, "normal");
        assert_eq!(
            c.band_queue(c.band_for(Priority::new(100).expect("ok"))),
            "dissemination-low"
        );
        let normal = c.band_for(Priority::new(50).expect("ok")).clone();
        assert_eq!(c.batched_queue(&normal), "dissemination-normal-batched");
        assert_eq!(normal.batch_slots(), normal.slots);
        assert!(c.worker.batch_local_slots < c.worker.local_slots);
        c.worker.batch_local_slots = 0;
        let refused = c.validate().expect_err("no local slot for batch items");
        assert!(refused.to_string().contains("batch_local_slots"));
        c.worker.batch_local_slots = 3;
        c.worker.batch_nice = 20;
        let refused = c.validate().expect_err("past the lowest priority");
        assert!(refused.to_string().contains("batch_nice"));
    }

    #[test]
    fn an_aip_runs_on_its_size_class_queue_whatever_its_band() {
        let mut c = Config::default();
        c.fill_defaults();
        let (mib, gib) = (1024 * 1024, 1024 * 1024 * 1024);
        let p = |p| Priority::new(p).expect("in range");
        let single = |c: &Config, prio, bytes| c.request_queue(p(prio), bytes, false);
        let item = |c: &Config, prio, bytes| c.request_queue(p(prio), bytes, true);
        // Moved inside its workflow task: its band's queue.
        assert_eq!(single(&c, 50, mib), "dissemination-normal");
        assert_eq!(item(&c, 50, mib), "dissemination-normal-batched");
        assert_eq!(single(&c, 50, 2 * mib), "dissemination-small");
        assert_eq!(single(&c, 11, 64 * mib), "dissemination-small");
        // The most urgent band's: each class's queue of its own, never
        // behind a less urgent transfer of the class.
        assert_eq!(single(&c, 1, 64 * mib), "dissemination-small-urgent");
        assert_eq!(single(&c, 10, 4 * gib), "dissemination-medium-urgent");
        assert_eq!(single(&c, 1, 256 * gib), "dissemination-large-urgent");
        // A batch's small items: the batch items' small queue, not behind
        // the batch's large ones nor on a single request's slots.
        assert_eq!(item(&c, 70, 2 * mib), "dissemination-small-batched");
        assert_eq!(item(&c, 1, 64 * mib), "dissemination-small-batched");
        // Medium: a class of its own, not behind the band's terabyte AIPs.
        assert_eq!(single(&c, 40, 64 * mib + 1), "dissemination-medium");
        assert_eq!(single(&c, 90, 4 * gib), "dissemination-medium");
        assert_eq!(item(&c, 1, 64 * mib + 1), "dissemination-medium-batched");
        // Just over the medium class: the large class, whose transfers end
        // within the hour, not behind the band's terabyte AIPs.
        assert_eq!(single(&c, 11, 4 * gib + 1), "dissemination-large");
        assert_eq!(single(&c, 90, 256 * gib), "dissemination-large");
        assert_eq!(item(&c, 50, 4 * gib + 1), "dissemination-large-batched");
        // Over every class: its band's slots.
        assert_eq!(single(&c, 1, 256 * gib + 1), "dissemination-urgent");
        assert_eq!(item(&c, 1, 256 * gib + 1), "dissemination-urgent-batched");
        // Without the urgent band's slots: the class's queue, every band's.
        c.worker.urgent_class_slots = 0;
        assert_eq!(single(&c, 1, 64 * mib), "dissemination-small");
        assert_eq!(c.urgent_class_queue(SizeClass::Large), None);
        c.worker.urgent_class_slots = 2;
        let queues = c.dissemination_queues();
        assert_eq!(queues.len(), 4 * 2 + 3 * 3, "{queues:?}");
        assert_eq!(queues.iter().filter(|q| q.batched).count(), 4 + 3);
        let urgent = DisseminationQueue {
            name: "dissemination-large-urgent".into(),
            slots: 2,
            batched: false,
        };
        assert!(queues.contains(&urgent), "{queues:?}");
        // A class turned off: the next one up takes its AIPs.
        c.worker.small_max_bytes = 0;
        assert_eq!(single(&c, 50, 2 * mib), "dissemination-medium");
        c.worker.medium_max_bytes = 0;
        assert_eq!(single(&c, 50, 2 * mib), "dissemination-large");
        c.worker.large_max_bytes = 0;
        assert_eq!(single(&c, 50, 2 * mib), "dissemination-normal");
        assert_eq!(item(&c, 50, 2 * mib), "dissemination-normal-batched");
        c.worker.medium_slots = 0;
        let refused = c.validate().expect_err("no slot for medium AIPs");
        assert!(refused.to_string().contains("medium_slots"));
        c.worker.medium_slots = 4;
        c.worker.large_slots = 0;
        let refused = c.validate().expect_err("no slot for large AIPs");
        assert!(refused.to_string().contains("large_slots"));
        // Bounds in order, a class turned off aside.
        let mut c = Config::default();
        c.fill_defaults();
        c.worker.medium_max_bytes = 0;
        c.validate().expect("no medium class");
        c.worker.large_max_bytes = 32 * mib;
        let refused = c.validate().expect_err("the large class under the small");
        assert!(refused.to_string().contains("large_max_bytes"));
    }

    #[test]
    fn a_band_named_like_another_queue_is_refused() {
        // The most urgent band's class queues are `{prefix}-{class}-{band}`.
        let names = [
            (1, "small"),
            (1, "steps"),
            (2, "locks-held"),
            (0, "batched"),
            (3, "large-urgent"),
        ];
        for (band, name) in names {
            let mut c = Config::default();
            c.fill_defaults();
            c.bands[band].name = name.into();
            let refused = c.validate().expect_err(name);
            assert!(
                refused.to_string().contains("share a name"),
                "{name}: {refused}"
            );
        }
        let mut c = Config::default();
        c.fill_defaults();
        c.bands[2].name = c.bands[1].name.clone();
        let refused = c.validate().expect_err("two bands of one name");
        assert!(refused.to_string().contains("share a name"), "{refused}");
        // One band: every priority's, so no queue of its own per class.
        c.bands = vec![c.bands[3].clone()];
        c.validate().expect("one band");
        assert_eq!(c.urgent_class_queue(SizeClass::Small), None);
    }

    #[test]
    fn locations_come_from_the_environment_and_old_keys_are_refused() {
        let env = |pairs: &[(&str, &str)]| {
            Config::from_env_vars(
                pairs
                    .iter()
                    .map(|(k, v)| (format!("DISSEMINATION_{k}"), (*v).to_owned())),
            )
        };
        let c = env(&[
            ("REPOSITORY__LOCATIONS__DISK__KIND", "disk"),
            ("REPOSITORY__LOCATIONS__DISK__ROOT", "/mnt/aips"),
            ("REPOSITORY__LOCATIONS__HPSS__KIND", "tape"),
            ("REPOSITORY__LOCATIONS__HPSS__PREFERENCE", "95"),
            (
                "REPOSITORY__LOCATIONS__HPSS__API_URL",
                "https://tape.example.org/api/v1",
            ),
        ])
        .expect("valid");
        assert_eq!(
            c.repository.disk_root("disk"),
            Some(std::path::Path::new("/mnt/aips"))
        );
        assert_eq!(
            c.repository.locations.len(),
            2,
            "the table replaces the default one"
        );
        assert_eq!(c.repository.locations["hpss"].preference(), 95);
        assert_eq!(c.repository.locations["hpss"].kind(), LocationKind::Tape);
        let old = env(&[("REPOSITORY__DISK_ROOT", "/mnt/aips")]).err();
        assert!(old.is_some_and(|e| e.to_string().contains("[repository.locations.")));
        assert!(
            env(&[("REPOSITORY__LOCATIONS__DISK__ROOT", "/x")]).is_err(),
            "kind is required"
        );
    }

    #[test]
    fn link_lifetime_over_seven_days_is_refused() {
        let mut c = Config::default();
        c.fill_defaults();
        c.timings.link_lifetime_secs = 8 * 24 * 3600;
        assert!(c.validate().is_err());
    }
}
