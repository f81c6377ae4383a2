//! The OS limits a worker puts on itself (Linux, through rustix's safe `setrlimit`).
//!
//! - Address space (`RLIMIT_AS`): an allocation beyond it fails, and Rust aborts the worker,
//!   not the importer or the server.
//! - CPU time (`RLIMIT_CPU`): counted for the whole life of a process, so before each file the
//!   soft limit is moved to the CPU time used so far plus the file's budget; the kernel sends
//!   SIGXCPU when it is reached. The hard limit stays where it was, so it can be moved again.
//! - Core dumps (`RLIMIT_CORE`): none, so a killed worker writes nothing to disk.

/// Whether this platform can limit a worker; elsewhere files are read in-process.
pub const SUPPORTED: bool = cfg!(target_os = "linux");

#[cfg(target_os = "linux")]
mod imp {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    use rustix::time::{ClockId, clock_gettime};

    pub fn apply_memory_limit(bytes: u64) -> std::io::Result<()> {
        setrlimit(Resource::Core, Rlimit { current: Some(0), maximum: Some(0) })?;
        setrlimit(Resource::As, Rlimit { current: Some(bytes), maximum: Some(bytes) })?;
        Ok(())
    }

    pub fn allow_cpu_seconds(seconds: u64) -> std::io::Result<()> {
        let used = clock_gettime(ClockId::ProcessCPUTime);
        // Whole seconds used, rounded up, so the budget is never less than asked for.
        let used_seconds = u64::try_from(used.tv_sec).unwrap_or(0) + u64::from(used.tv_nsec > 0);
        let wanted = used_seconds.saturating_add(seconds.max(1));
        let maximum = getrlimit(Resource::Cpu).maximum;
        let current = Some(maximum.map_or(wanted, |hard| wanted.min(hard)));
        setrlimit(Resource::Cpu, Rlimit { current, maximum })?;
        Ok(())
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub fn apply_memory_limit(_bytes: u64) -> std::io::Result<()> {
        Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "no resource limits on this platform"))
    }

    pub fn allow_cpu_seconds(_seconds: u64) -> std::io::Result<()> {
        Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "no resource limits on this platform"))
    }
}

pub use imp::{allow_cpu_seconds, apply_memory_limit};
