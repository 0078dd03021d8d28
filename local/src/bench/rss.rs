//! Peak resident memory of this process: `VmHWM` from `/proc/self/status` (Linux), the same
//! quantity Lambda reports as "Max Memory Used".

/// The `VmHWM` line's value in kB.
pub fn parse_vm_hwm_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Peak RSS of this process so far, in MiB (`None` off Linux).
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm_kb(&status).map(|kb| kb as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_high_water_mark_is_read_from_proc_status() {
        // GIVEN a /proc/self/status excerpt
        let status =
            "Name:\tripple\nVmPeak:\t  200000 kB\nVmHWM:\t   23552 kB\nVmRSS:\t   20000 kB\n";
        // WHEN parsed THEN VmHWM (not VmPeak or VmRSS) is taken
        assert_eq!(parse_vm_hwm_kb(status), Some(23_552));
        assert_eq!(parse_vm_hwm_kb("Name:\tx\n"), None);
    }
}
