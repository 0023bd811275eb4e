//! How large a block of pages the kernel may give a stream's file, which
//! decides how a stream's released chunks may be given back.
//!
//! When transparent huge pages are on for shared memory (the
//! `shmem_enabled` settings under `/sys/kernel/mm/transparent_hugepage`),
//! a memfd's pages come in folios of up to 2 MiB: `sendfile(2)` then looks
//! up and references one folio per 2 MiB instead of one page per 4 KiB,
//! which is what makes sending from the file cheaper than copying on this
//! machine (docs/benchmarks.md). But punching a hole in *part* of such a
//! folio makes the kernel zero that part before trying to split it
//! (`truncate_inode_partial_folio`), and a socket may still hold those
//! pages, sent but not yet read by a slow player: the player would get
//! zeros. So a stream's file is only ever punched in whole, aligned blocks
//! of the largest folio size the kernel may use for it.

use std::path::Path;
use std::sync::OnceLock;

/// The smallest page.
pub const PAGE: u64 = 4096;

/// The largest folio the kernel may give a memfd, in bytes: [`PAGE`] when
/// huge pages are off for shared memory. Read once; the settings live in
/// sysfs (memory, not a disk), and an operator who changes them restarts.
pub fn largest() -> u64 {
    static LARGEST: OnceLock<u64> = OnceLock::new();
    *LARGEST.get_or_init(|| largest_in(Path::new("/sys/kernel/mm/transparent_hugepage")))
}

/// [`largest`] as read off a `transparent_hugepage` directory. Anything
/// unreadable counts as the largest size, which is always safe.
fn largest_in(dir: &Path) -> u64 {
    if !dir.exists() {
        return PAGE; // a kernel without transparent huge pages
    }
    let setting = |path: &Path| std::fs::read_to_string(path).ok().and_then(|s| selected(&s));
    let pmd = std::fs::read_to_string(dir.join("hpage_pmd_size"))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|n| n.is_power_of_two() && *n >= PAGE)
        .unwrap_or(2 << 20);
    let Some(global) = setting(&dir.join("shmem_enabled")) else { return pmd };
    if global == "deny" {
        return PAGE;
    }
    let global_on = global != "never";
    let mut largest = if global_on { pmd } else { PAGE };
    // Multi-size huge pages: each size has its own `shmem_enabled`.
    let Ok(entries) = std::fs::read_dir(dir) else { return pmd };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(bytes) = name
            .to_str()
            .and_then(|n| n.strip_prefix("hugepages-")?.strip_suffix("kB")?.parse::<u64>().ok())
            .and_then(|kb| kb.checked_mul(1024))
        else {
            continue;
        };
        let on = match setting(&entry.path().join("shmem_enabled")).as_deref() {
            Some("never") => false,
            Some("inherit") => global_on,
            Some(_) | None => true,
        };
        if on && bytes.is_power_of_two() {
            largest = largest.max(bytes);
        }
    }
    largest
}

/// The word in brackets of a sysfs choice line: `always [never] deny`.
fn selected(line: &str) -> Option<String> {
    let start = line.find('[')? + 1;
    let end = start + line[start..].find(']')?;
    Some(line[start..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory, removed when dropped.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new() -> Self {
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("acemux-thp-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn thp_dir(global: &str, sizes: &[(u64, &str)]) -> Scratch {
        let dir = Scratch::new();
        std::fs::write(dir.path().join("shmem_enabled"), global).unwrap();
        std::fs::write(dir.path().join("hpage_pmd_size"), "2097152\n").unwrap();
        for (kb, setting) in sizes {
            let size = dir.path().join(format!("hugepages-{kb}kB"));
            std::fs::create_dir(&size).unwrap();
            std::fs::write(size.join("shmem_enabled"), setting).unwrap();
        }
        dir
    }

    #[test]
    fn huge_pages_off_for_shared_memory_means_single_pages() {
        let dir = thp_dir(
            "always within_size advise [never] deny force\n",
            &[(2048, "always inherit within_size advise [never]")],
        );
        assert_eq!(largest_in(dir.path()), PAGE);
        let dir = thp_dir("always within_size advise never [deny] force\n", &[(64, "[always] inherit")]);
        assert_eq!(largest_in(dir.path()), PAGE, "deny turns every size off");
    }

    #[test]
    fn any_mode_that_may_allocate_huge_pages_means_the_pmd_size() {
        for global in
            ["[always] never", "always [within_size] never", "always [advise] never", "never [force]"]
        {
            assert_eq!(largest_in(thp_dir(global, &[]).path()), 2 << 20, "{global}");
        }
    }

    #[test]
    fn a_smaller_size_enabled_on_its_own_counts_when_the_global_setting_is_off() {
        let dir = thp_dir(
            "always [never]\n",
            &[(64, "always inherit within_size [advise] never"), (2048, "always [inherit] never")],
        );
        assert_eq!(largest_in(dir.path()), 64 << 10);
        let dir = thp_dir("[within_size] never\n", &[(64, "[inherit] never"), (2048, "[inherit] never")]);
        assert_eq!(largest_in(dir.path()), 2 << 20);
    }

    #[test]
    fn a_kernel_without_huge_pages_or_unreadable_settings() {
        assert_eq!(largest_in(Path::new("/nonexistent/transparent_hugepage")), PAGE);
        let dir = Scratch::new();
        assert_eq!(largest_in(dir.path()), 2 << 20, "unreadable: assume the largest");
    }

    #[test]
    fn this_machine_answers_a_power_of_two_of_at_least_a_page() {
        let n = largest();
        assert!(n.is_power_of_two() && n >= PAGE, "{n}");
    }
}
