//! Turns the system's readings, as `sysinfo` gives them, into a [`Snapshot`].
//!
//! A [`Collector`] owns the `sysinfo` handles. Each [`Collector::sample`]
//! refreshes only what a snapshot shows (memory, CPU usage, the process
//! table without threads, disks' space, network counters, sensors), and
//! [`Collector::snapshot`] copies those readings into the plain message
//! types. What `sysinfo` does not read, or cannot read everywhere, comes
//! from the platform's own sources (`crate::platform::diag`: `/proc` and
//! the kernel log on Linux, `GetSystemTimes` and IP Helper on Windows),
//! which fill their part of the snapshot last. CPU usage is a difference between two readings, so a snapshot only
//! means something once two samples have been taken at least
//! [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`] apart; [`Collector::is_ready`]
//! says when.
//!
//! Readings come from outside the process, so nothing here trusts them:
//! missing values become empty fields, counts saturate, and floats that are
//! not finite become zero (JSON cannot carry NaN).

use std::time::{SystemTime, UNIX_EPOCH};

use sprijin_proto::diag_text::shorten;
use sprijin_proto::message::diag::{
    Cpu, Disk, DiskKind, Host, LoadAverage, Memory, NetworkInterface, ProcessInfo, Processes,
    RelayClock, Snapshot, StuckProcess, Swap, Temperature,
};

use super::probes::SlowReadings;
use super::stuck::{MAX_STUCK, StuckTracker};
use super::watch::Watched;
use crate::platform::diag as source;
use sysinfo::{
    Components, CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, Networks, Process,
    ProcessRefreshKind, ProcessStatus, RefreshKind, System, ThreadKind, UpdateKind, Users,
};

/// How many processes each "top" list keeps.
pub const TOP_PROCESSES: usize = 10;

/// Longest command line kept per process; some carry whole scripts.
pub const COMMAND_MAX_CHARS: usize = 512;

/// The user table changes rarely and costs a file parse, so it is reread
/// only every this many samples.
const USERS_REFRESH_EVERY: u64 = 30;

/// Facts that do not change while the agent runs, read once.
#[derive(Debug, Clone)]
struct HostFacts {
    os_name: String,
    os_version: String,
    kernel: String,
    arch: String,
    boot_time_secs: u64,
    physical_cores: Option<u32>,
}

impl HostFacts {
    fn read() -> Self {
        HostFacts {
            os_name: System::name().unwrap_or_default(),
            os_version: System::os_version().unwrap_or_default(),
            kernel: System::kernel_version().unwrap_or_default(),
            arch: System::cpu_arch(),
            boot_time_secs: System::boot_time(),
            physical_cores: System::physical_core_count().map(saturating_u32),
        }
    }
}

/// Owns the `sysinfo` handles and turns their readings into snapshots.
pub struct Collector {
    system: System,
    disks: Disks,
    networks: Networks,
    components: Components,
    users: Users,
    facts: HostFacts,
    samples: u64,
    users_refresh_at: u64,
    host_name: String,
    uptime_secs: u64,
    taken_at_ms: u64,
    stuck: StuckTracker,
    stuck_now: Vec<StuckProcess>,
    platform: source::Readings,
    slow: SlowReadings,
    relay_clock: Option<RelayClock>,
    watched: Watched,
}

impl Default for Collector {
    fn default() -> Self {
        Self::new()
    }
}

impl Collector {
    /// A collector that has read the host's fixed facts but taken no sample.
    pub fn new() -> Self {
        Collector {
            system: System::new(),
            disks: Disks::new(),
            networks: Networks::new(),
            components: Components::new(),
            users: Users::new(),
            facts: HostFacts::read(),
            samples: 0,
            users_refresh_at: 0,
            host_name: String::new(),
            uptime_secs: 0,
            taken_at_ms: 0,
            stuck: StuckTracker::default(),
            stuck_now: Vec::new(),
            platform: source::Readings::new(),
            slow: SlowReadings::default(),
            relay_clock: None,
            watched: Watched::default(),
        }
    }

    /// Reads the system once more. Blocking: it reads the process table and
    /// stats each mounted file system.
    pub fn sample(&mut self) {
        let mut kind = RefreshKind::nothing()
            .with_memory(MemoryRefreshKind::everything())
            .with_processes(
                // Command line and owner rarely change, so they are read
                // once per process; threads are not needed and are the
                // expensive part of a process scan.
                ProcessRefreshKind::nothing()
                    .with_cpu()
                    .with_memory()
                    .with_cmd(UpdateKind::OnlyIfNotSet)
                    .with_user(UpdateKind::OnlyIfNotSet)
                    .without_tasks(),
            );
        // Where `sysinfo`'s CPU refresh cannot be trusted to work (on
        // Windows any CPU refresh, even of nothing, opens the performance
        // counters), it is not asked at all and the platform measures.
        if source::SYSINFO_CPU_USAGE {
            kind = kind.with_cpu(CpuRefreshKind::nothing().with_cpu_usage());
        }
        self.system.refresh_specifics(kind);
        self.disks
            .refresh_specifics(true, DiskRefreshKind::nothing().with_storage().with_kind());
        self.networks.refresh(true);
        if source::SYSINFO_SENSORS {
            self.components.refresh(true);
        }
        if self.samples >= self.users_refresh_at {
            self.users.refresh();
            self.users_refresh_at = self.samples.saturating_add(USERS_REFRESH_EVERY);
        }
        self.host_name = System::host_name().unwrap_or_default();
        self.uptime_secs = System::uptime();
        self.samples = self.samples.saturating_add(1);
        self.taken_at_ms = unix_ms_now();

        let mounts: Vec<String> = self
            .disks
            .list()
            .iter()
            .map(|d| d.mount_point().to_string_lossy().into_owned())
            .collect();
        self.platform.sample(&mounts, self.facts.boot_time_secs);
        self.stuck_now = self.stuck_processes();
    }

    /// Gives the snapshot this clock's offset from the relay's.
    pub fn set_relay_clock(&mut self, clock: Option<RelayClock>) {
        self.relay_clock = clock;
    }

    /// Gives the snapshot the latest slow readings (name resolution,
    /// services, clock), which are taken elsewhere.
    pub fn set_slow(&mut self, slow: SlowReadings) {
        self.slow = slow;
    }

    /// Gives the snapshot what the watcher saw over time.
    pub fn set_watched(&mut self, watched: Watched) {
        self.watched = watched;
    }

    fn stuck_processes(&mut self) -> Vec<StuckProcess> {
        let in_d: Vec<u32> = self
            .system
            .processes()
            .values()
            .filter(|p| p.thread_kind() != Some(ThreadKind::Userland))
            .filter(|p| p.status() == ProcessStatus::UninterruptibleDiskSleep)
            .map(|p| p.pid().as_u32())
            .collect();
        let mut stuck: Vec<StuckProcess> = self
            .stuck
            .update(self.taken_at_ms, &in_d)
            .into_iter()
            .filter_map(|(pid, secs)| {
                let p = self.system.process(sysinfo::Pid::from_u32(pid))?;
                let info = process_info(p, &self.users);
                Some(StuckProcess {
                    pid,
                    name: info.name,
                    command: info.command,
                    stuck_secs: secs,
                })
            })
            .collect();
        stuck.sort_by(|a, b| b.stuck_secs.cmp(&a.stuck_secs).then(a.pid.cmp(&b.pid)));
        stuck.truncate(MAX_STUCK);
        stuck
    }

    /// Whether two samples have been taken, so CPU usage is real.
    pub fn is_ready(&self) -> bool {
        self.samples >= 2
    }

    /// The readings of the latest sample as a snapshot.
    pub fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot {
            taken_at_ms: self.taken_at_ms,
            host: self.host(),
            cpu: cpu(&self.system, self.facts.physical_cores),
            memory: memory(&self.system),
            swap: swap(&self.system),
            disks: disks(&self.disks),
            networks: networks(&self.networks),
            processes: processes(&self.system, &self.users),
            temperatures: temperatures(&self.components),
            stuck_processes: self.stuck_now.clone(),
            name_resolution: self.slow.name_resolution.clone(),
            services: self.slow.services.clone(),
            clock_synchronized: self.slow.clock_synchronized,
            pending_reboot: self.slow.pending_reboot.clone(),
            folders: self.slow.folders.clone(),
            relay_clock: self.relay_clock.clone(),
            trends: self.watched.trends.clone(),
            packages: self.watched.packages.clone(),
            ..Snapshot::default()
        };
        self.platform.fill(&mut s);
        s
    }

    fn host(&self) -> Host {
        let f = &self.facts;
        Host {
            name: self.host_name.clone(),
            os_name: f.os_name.clone(),
            os_version: f.os_version.clone(),
            kernel: f.kernel.clone(),
            arch: f.arch.clone(),
            uptime_secs: self.uptime_secs,
            boot_time_secs: f.boot_time_secs,
        }
    }
}

fn cpu(system: &System, physical_cores: Option<u32>) -> Cpu {
    let cpus = system.cpus();
    let load = System::load_average();
    Cpu {
        model: cpus
            .first()
            .map(|c| c.brand().trim().to_string())
            .unwrap_or_default(),
        physical_cores,
        logical_cores: saturating_u32(cpus.len()),
        usage_percent: finite(system.global_cpu_usage()),
        per_core_percent: cpus.iter().map(|c| finite(c.cpu_usage())).collect(),
        load_average: LoadAverage {
            one: finite64(load.one),
            five: finite64(load.five),
            fifteen: finite64(load.fifteen),
        },
    }
}

fn memory(system: &System) -> Memory {
    let total = system.total_memory();
    let available = system.available_memory();
    Memory {
        total_bytes: total,
        // Computed here rather than asked for, so a reading with more
        // available than total cannot underflow.
        used_bytes: total.saturating_sub(available),
        available_bytes: available,
    }
}

fn swap(system: &System) -> Swap {
    let total = system.total_swap();
    Swap {
        total_bytes: total,
        used_bytes: total.saturating_sub(system.free_swap()),
    }
}

fn disks(disks: &Disks) -> Vec<Disk> {
    let mut out: Vec<Disk> = disks
        .list()
        .iter()
        .map(|d| {
            let (inodes_total, inodes_free) = source::inodes(d.mount_point());
            Disk {
                mount_point: d.mount_point().to_string_lossy().into_owned(),
                device: d.name().to_string_lossy().into_owned(),
                file_system: d.file_system().to_string_lossy().into_owned(),
                kind: match d.kind() {
                    sysinfo::DiskKind::HDD => DiskKind::Hdd,
                    sysinfo::DiskKind::SSD => DiskKind::Ssd,
                    sysinfo::DiskKind::Unknown(_) => DiskKind::Unknown,
                },
                total_bytes: d.total_space(),
                available_bytes: d.available_space().min(d.total_space()),
                removable: d.is_removable(),
                read_only: d.is_read_only(),
                inodes_total,
                inodes_free,
            }
        })
        .collect();
    out.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
    out
}

fn networks(networks: &Networks) -> Vec<NetworkInterface> {
    let mut out: Vec<NetworkInterface> = networks
        .list()
        .iter()
        .map(|(name, n)| NetworkInterface {
            name: name.clone(),
            addresses: {
                // The system lists addresses in no fixed order; sorted, two
                // snapshots of the same machine compare equal.
                let mut a = n.ip_networks().to_vec();
                a.sort();
                a.iter().map(|a| a.to_string()).collect()
            },
            mac: n.mac_address().to_string(),
            bytes_in: n.total_received(),
            bytes_out: n.total_transmitted(),
            errors_in: n.total_errors_on_received(),
            errors_out: n.total_errors_on_transmitted(),
            packets_in: n.total_packets_received(),
            packets_out: n.total_packets_transmitted(),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn processes(system: &System, users: &Users) -> Processes {
    // Userland threads show up as processes on some systems; they are part of
    // their process, not processes of their own.
    let all: Vec<&Process> = system
        .processes()
        .values()
        .filter(|p| p.thread_kind() != Some(ThreadKind::Userland))
        .collect();
    let zombies = all
        .iter()
        .filter(|p| p.status() == ProcessStatus::Zombie)
        .count();

    let mut by_cpu = all.clone();
    by_cpu.sort_by(|a, b| {
        finite(b.cpu_usage())
            .total_cmp(&finite(a.cpu_usage()))
            .then(a.pid().cmp(&b.pid()))
    });
    let mut by_memory = all.clone();
    by_memory.sort_by(|a, b| b.memory().cmp(&a.memory()).then(a.pid().cmp(&b.pid())));

    let info = |p: &&Process| process_info(p, users);
    Processes {
        count: saturating_u32(all.len()),
        zombies: saturating_u32(zombies),
        top_cpu: by_cpu.iter().take(TOP_PROCESSES).map(info).collect(),
        top_memory: by_memory.iter().take(TOP_PROCESSES).map(info).collect(),
    }
}

fn process_info(p: &Process, users: &Users) -> ProcessInfo {
    // Secrets are hidden before the line is shortened, so a cut can never
    // leave part of one behind.
    let args: Vec<_> = p.cmd().iter().map(|arg| arg.to_string_lossy()).collect();
    let command = super::redact::command_line(&args);
    ProcessInfo {
        pid: p.pid().as_u32(),
        name: p.name().to_string_lossy().into_owned(),
        command: shorten(&command, COMMAND_MAX_CHARS),
        user: p
            .user_id()
            .and_then(|uid| users.get_user_by_id(uid))
            .map(|u| u.name().to_string()),
        cpu_percent: finite(p.cpu_usage()),
        memory_bytes: p.memory(),
        start_time_secs: p.start_time(),
        status: p.status().to_string(),
    }
}

fn temperatures(components: &Components) -> Vec<Temperature> {
    components
        .list()
        .iter()
        .filter_map(|c| {
            // A sensor that cannot be read is left out rather than shown as 0.
            let celsius = c.temperature().filter(|t| t.is_finite())?;
            Some(Temperature {
                label: c.label().to_string(),
                celsius,
                critical_celsius: c.critical().filter(|t| t.is_finite() && *t > 0.0),
            })
        })
        .collect()
}

fn unix_ms_now() -> u64 {
    // A clock set before 1970 gives 0, which readers take as "unknown".
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn finite(x: f32) -> f32 {
    if x.is_finite() { x } else { 0.0 }
}

fn finite64(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_readings_become_zero() {
        assert_eq!(finite(f32::NAN), 0.0);
        assert_eq!(finite(f32::INFINITY), 0.0);
        assert_eq!(finite(12.5), 12.5);
        assert_eq!(finite64(f64::NEG_INFINITY), 0.0);
    }

    #[test]
    fn two_samples_make_a_snapshot_with_real_host_data() {
        let mut c = Collector::new();
        c.sample();
        assert!(!c.is_ready());
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        c.sample();
        assert!(c.is_ready());
        let s = c.snapshot();
        assert!(s.taken_at_ms > 0);
        assert!(s.cpu.logical_cores > 0);
        if source::SYSINFO_CPU_USAGE {
            assert_eq!(s.cpu.per_core_percent.len(), s.cpu.logical_cores as usize);
        }
        assert!(s.memory.total_bytes > 0);
        assert!(s.processes.count > 0);
        assert!(s.processes.top_cpu.len() <= TOP_PROCESSES);
    }
}
