use anyhow::Context;
use clap::{Parser, Subcommand};
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};
use std::{path::PathBuf, sync::Arc};
use temporalio_sdk::opentelemetry::{WorkflowIdGenerator, WorkflowSpanProcessor};
use worker::spans::RunWorkflowMarkers;

/// Transfers allocate and free a part buffer per part: mimalloc returns
/// them to the OS instead of letting arenas grow, so memory stays flat.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The Dissemination Service's Temporal worker.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// TOML configuration file (environment variables DISSEMINATION_* override it).
    #[arg(long, env = "DISSEMINATION_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Poll every task queue and run workflows and activities (the default).
    Run,
    /// Create the demo AIPs in the catalog and both repository locations.
    SeedDemo {
        /// Also create a single-TAR AIP of this many MiB (disk location only).
        #[arg(long)]
        large_mib: Option<u64>,
        /// Archive id of the large AIP.
        #[arg(long, default_value = "019e404e-ffff-7000-8000-000000000001")]
        large_id: String,
        /// Also create this many small single-TAR AIPs (disk location only),
        /// archiveIds `019e404e-<small-prefix>-7000-8000-<n as 12 hex digits>`.
        #[arg(long)]
        small: Option<usize>,
        /// Four hex digits naming the small AIPs.
        #[arg(long, default_value = "5a11")]
        small_prefix: String,
        /// KiB of content in each small AIP.
        #[arg(long, default_value_t = 16)]
        small_kib: usize,
        /// Also create the tape demo AIPs (one on tape only, one on tape
        /// and disk; location `hpss`, configured as kind "tape"), their
        /// tape copies written under this folder: the tape-library's
        /// --tape-dir.
        #[arg(long, requires = "tape_manifest")]
        tape_dir: Option<PathBuf>,
        /// The tape-library's --manifest, where their volume and position
        /// are added (read by the library at start: seed before starting it).
        #[arg(long, requires = "tape_dir")]
        tape_manifest: Option<PathBuf>,
    },
    /// Benchmark floor: `--count` minimal workflows (one activity copying a
    /// file into S3 with one PUT) through the same Temporal server; prints
    /// items/s and one item's events and workflow tasks.
    Floor {
        /// The files to copy, one per item (cycled to `--count`).
        #[arg(long, required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        #[arg(long, default_value_t = 1000)]
        count: usize,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Activity slots of the floor's worker.
        #[arg(long, default_value_t = 20)]
        slots: usize,
    },
    /// Benchmark baseline: workflow starts per second straight from the SDK.
    StartRate {
        #[arg(long, default_value_t = 2000)]
        count: usize,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let cfg = Arc::new(platform::config::Config::load(cli.config.as_deref())?);
    // Workflow spans get replay-safe ids and are not exported again on replay.
    let _telemetry = platform::telemetry::init_with(
        &cfg.log,
        &cfg.telemetry,
        "dissemination-worker",
        |exporter| {
            SdkTracerProvider::builder()
                .with_span_processor(WorkflowSpanProcessor::new(RunWorkflowMarkers(
                    BatchSpanProcessor::builder(exporter).build(),
                )))
                .with_id_generator(WorkflowIdGenerator::default())
        },
    );
    if !cfg.worker.transparent_huge_pages {
        // Process-wide, for the pages touched from now on (mimalloc advises
        // huge pages for its arenas; `worker.transparent_huge_pages`).
        if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
            tracing::warn!(error = %e, "transparent huge pages could not be turned off");
        }
    }
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => worker::run(cfg, platform::shutdown::signal()).await,
        Command::Floor {
            files,
            count,
            concurrency,
            slots,
        } => {
            let files: Vec<PathBuf> = files.iter().cycle().take(count).cloned().collect();
            let run = worker::floor::run(&cfg, files, concurrency, slots).await?;
            println!(
                "{:.1} items/s ({count} items, {concurrency} starters, {slots} slots, {} failed); \
                 one item: {} events, {} workflow tasks",
                run.items_per_sec, run.failures, run.events, run.workflow_tasks
            );
            Ok(())
        }
        Command::StartRate { count, concurrency } => {
            let (rate, failures) = worker::probe::raw_start_rate(&cfg, count, concurrency).await?;
            println!(
                "{rate:.1} starts/s ({count} starts, {concurrency} concurrent, {failures} failed)"
            );
            Ok(())
        }
        Command::SeedDemo {
            large_mib,
            large_id,
            small,
            small_prefix,
            small_kib,
            tape_dir,
            tape_manifest,
        } => {
            if let Some(n) = small {
                let ids = worker::demo::seed_small(&cfg, &small_prefix, n, small_kib).await?;
                println!(
                    "{} small AIPs, {} .. {}",
                    ids.len(),
                    ids[0],
                    ids[ids.len() - 1]
                );
                return Ok(());
            }
            for aip in worker::demo::seed(&cfg)
                .await
                .context("creating demo AIPs")?
            {
                let e = &aip.intellectual_entity;
                println!(
                    "{} contract={} status={} files={}",
                    e.archive_id,
                    e.access_group_id,
                    e.status,
                    aip.repository_files.len()
                );
            }
            if let (Some(tape_dir), Some(manifest)) = (tape_dir, tape_manifest) {
                let tape = worker::demo::TapeSeed { tape_dir, manifest };
                for aip in worker::demo::seed_tape(&cfg, &tape)
                    .await
                    .context("creating the tape demo AIPs")?
                {
                    let e = &aip.intellectual_entity;
                    let locations: Vec<&str> = aip.repository_files[0]
                        .locations
                        .iter()
                        .map(|l| l.location_id.as_str())
                        .collect();
                    println!(
                        "{} contract={} status={} files={} copies={}",
                        e.archive_id,
                        e.access_group_id,
                        e.status,
                        aip.repository_files.len(),
                        locations.join(",")
                    );
                }
            }
            if let Some(mib) = large_mib {
                let aip = worker::demo::seed_large(&cfg, &large_id, mib).await?;
                println!(
                    "{} contract={} size={} (large)",
                    aip.intellectual_entity.archive_id,
                    aip.intellectual_entity.access_group_id,
                    aip.intellectual_entity.sum_size_in_bytes
                );
            }
            Ok(())
        }
    }
}
