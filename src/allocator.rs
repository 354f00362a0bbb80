//! glibc's allocator, set for this process' pattern: after every poll a source builds a new
//! snapshot and page of up to tens of MiB and frees the last ones. By default glibc raises its
//! mmap threshold each time such a block is freed (up to 32 MiB), so the next ones come from
//! the heap, where freed space is kept and fragments, and each thread that allocates gets an
//! heap, where freed space is kept and fragments. Measured with the memory bench (docs/performance.md),
//! every series of 100,000 workers: 153 MiB after twelve polls by default,
//! 52 MiB with the threshold fixed at 128 KiB. Fewer arenas (`MALLOC_ARENA_MAX=1` or `2`)
//! saved 1 MiB at 1,000 workers but made the 100,000-worker figure swing between 52 and 77
//! MiB from run to run, so the arenas are left as glibc sets them; mimalloc (2.x, default
//! and with purging made eager) held 17.5-44 MiB at 1,000 workers and 29-86 at 10,000.

/// Large blocks are mapped and unmapped, never kept: the threshold glibc starts with, held.
const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Sets the allocator up; call first, before any thread starts. Where the `MALLOC_*`
/// variables glibc reads for this are set, the operator's choice stands.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let set = |name: &str| std::env::var_os(name).is_some();
        if !set("MALLOC_MMAP_THRESHOLD_") && !set("MALLOC_TRIM_THRESHOLD_") {
            // SAFETY: mallopt only changes an allocator parameter, before other threads run.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            }
        }
    }
}
