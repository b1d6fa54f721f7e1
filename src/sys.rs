//! The calls into the C library that the programs make beyond what std
//! wraps: the open-file limit, the allocator's tunables, a thread's priority.
//! Each `unsafe` block here says why it is sound.

/// The open-file limit a program runs with, and the one it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    /// The soft limit now.
    pub limit: u64,
    /// The soft limit before [`raise_open_file_limit`].
    pub before: u64,
}

impl OpenFiles {
    /// Whether the limit was raised.
    pub fn raised(&self) -> bool {
        self.limit > self.before
    }
}

/// Raises the soft open-file limit to the hard one, as Redis does for its
/// maxclients: every client connection is a descriptor, and the common soft
/// limit of 1 024 would turn clients away long before the machine must.
/// `None` when the limit cannot be read.
pub fn raise_open_file_limit() -> Option<OpenFiles> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes the struct it is given, which lives here.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    let before = limit.rlim_cur;
    // No hard limit: the kernel's fs.nr_open (1 Mi by default) is the real one.
    let wanted = match limit.rlim_max {
        libc::RLIM_INFINITY => 1 << 20,
        hard => hard,
    };
    if wanted > before {
        let raised = libc::rlimit {
            rlim_cur: wanted,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit(2) reads the struct it is given, which lives here.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return Some(OpenFiles {
                limit: wanted,
                before,
            });
        }
    }
    Some(OpenFiles {
        limit: before,
        before,
    })
}

/// Blocks of 1 MiB and more (a 100 000-entry reply is 4 MB) are mapped for
/// themselves and given back when freed. glibc would raise this threshold
/// after the first large block is freed (the state file's bytes, read at
/// start), and from then on every freed reply would stay resident: 4 MB at
/// 100 000 entries, 40 bytes an entry. Below 1 MiB (10 000 entries: 360 KB
/// a reply) blocks still come from the heap and are reused.
pub fn map_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable, under the allocator's own lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Lowers the calling thread's scheduling priority by `nice` steps (Linux
/// schedules threads one by one, so only this thread is affected): work that
/// an unauthenticated peer can cause then yields the cores to the work of
/// clients already served. Raising one's nice value needs no privilege;
/// failing to is harmless, so it is not reported.
pub fn lower_thread_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid(2) and setpriority(2) take and return plain integers.
    unsafe {
        let thread = libc::gettid();
        let now = libc::getpriority(libc::PRIO_PROCESS, thread as libc::id_t);
        libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, now + nice);
    }
}
