//! Giving virtual routers a core of their own on veth, and measuring the CPU time they use.
//!
//! By default a veth delivers a frame to its peer inside the sender's softirq, so a
//! generator, every router of a chain and the sink all run on the generator's core. With
//! NAPI on the receiving veth (GRO on there, TSO off at the sender) the frame is queued on
//! the peer's ring and polled by the peer's NAPI instance; with `threaded` set that poll runs
//! in a kthread `napi/DEV-ID` of its own, which can be pinned to a chosen core. Each router's
//! forwarding work (receive, route lookup, transmit to the next veth) then runs in the NAPI
//! thread of its ingress veth, which is what [`cpu_ns`] charges to the router.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use nix::sched::{sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// pids of the threaded-NAPI kthreads (`napi/*`) that exist now.
pub fn napi_threads() -> BTreeSet<i32> {
    let mut v = BTreeSet::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(comm) = std::fs::read_to_string(e.path().join("comm")) {
            if comm.starts_with("napi/") {
                v.insert(pid);
            }
        }
    }
    v
}

fn netns_run(ns: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", args[0]))?;
    if !out.status.success() {
        bail!(
            "{ns}: {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Gives `ns:dev` (the receiving end of a veth whose sender is `peer_ns:peer_dev`) threaded
/// NAPI and pins its NAPI kthreads to `cpu`, with real-time priority `rt` (SCHED_FIFO) if
/// given; returns their pids. Needs ethtool (and chrt for `rt`).
pub fn threaded_napi(
    ns: &str,
    dev: &str,
    peer_ns: &str,
    peer_dev: &str,
    cpu: usize,
    rt: Option<u8>,
) -> anyhow::Result<Vec<i32>> {
    let before = napi_threads();
    netns_run(ns, &["ethtool", "-K", dev, "gro", "on"])
        .context("enabling GRO (NAPI) on the receiving veth; is ethtool installed?")?;
    netns_run(peer_ns, &["ethtool", "-K", peer_dev, "tso", "off"])?;
    netns_run(
        ns,
        &[
            "sh",
            "-c",
            &format!("echo 1 > /sys/class/net/{dev}/threaded"),
        ],
    )?;
    let new: Vec<i32> = napi_threads().difference(&before).copied().collect();
    if new.is_empty() {
        bail!("{ns}:{dev}: no napi/ thread appeared after setting threaded = 1");
    }
    for &pid in &new {
        pin(pid, cpu)?;
        if let Some(prio) = rt {
            realtime(pid, prio)?;
        }
    }
    Ok(new)
}

/// Sets `napi_defer_hard_irqs` and `gro_flush_timeout` (ns) of `ns:dev` when either is
/// nonzero. On a veth they make a NAPI poll that found work re-arm a timer instead of
/// completing: the ring is polled again after `gro_flush_ns` without waiting for the
/// sender to schedule it (and producers skip the wake-up while it is armed).
pub fn napi_defer(ns: &str, dev: &str, defer: u32, gro_flush_ns: u64) -> anyhow::Result<()> {
    if defer == 0 && gro_flush_ns == 0 {
        return Ok(());
    }
    netns_run(
        ns,
        &[
            "sh",
            "-c",
            &format!(
                "echo {defer} > /sys/class/net/{dev}/napi_defer_hard_irqs && \
                 echo {gro_flush_ns} > /sys/class/net/{dev}/gro_flush_timeout"
            ),
        ],
    )
}

/// SCHED_FIFO at `prio` for a thread (`chrt`): on a core shared with other work, a NAPI
/// thread that is not scheduled for a few milliseconds overflows its 256-frame ring, which
/// would measure the neighbours, not the router.
pub fn realtime(pid: i32, prio: u8) -> anyhow::Result<()> {
    let st = Command::new("chrt")
        .args(["-f", "-p", &prio.to_string(), &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .context("running chrt")?;
    if !st.success() {
        bail!("chrt -f -p {prio} {pid} failed");
    }
    Ok(())
}

/// Restricts a process or thread to one CPU.
pub fn pin(pid: i32, cpu: usize) -> anyhow::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu).context("cpu number")?;
    sched_setaffinity(Pid::from_raw(pid), &set).with_context(|| format!("pinning {pid} to {cpu}"))
}

/// Nanoseconds a thread has run (first field of /proc/PID/schedstat, or of
/// /proc/PID/task/TID/schedstat for a thread).
fn schedstat_ns(path: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Nanoseconds these tasks (pids or tids, not their threads) spent runnable but waiting for
/// a CPU (second field of /proc/PID/schedstat): a NAPI thread woken but kept off its core
/// (PREEMPT_NONE kernels run a task in kernel mode to its next preemption point first).
pub fn wait_ns(tids: &[i32]) -> u64 {
    tids.iter()
        .filter_map(|t| {
            std::fs::read_to_string(format!("/proc/{t}/schedstat"))
                .ok()?
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// CPU time (ns) used so far by these processes, every thread of each counted.
pub fn cpu_ns(pids: &[i32]) -> u64 {
    let mut total = 0;
    for pid in pids {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"));
        match tasks {
            Ok(rd) => {
                for t in rd.flatten() {
                    total += schedstat_ns(&format!("{}/schedstat", t.path().display()));
                }
            }
            Err(_) => total += schedstat_ns(&format!("/proc/{pid}/schedstat")),
        }
    }
    total
}

/// (busy, total) jiffies of one CPU from /proc/stat: busy is everything but idle and iowait.
pub fn cpu_jiffies(cpu: usize) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    parse_cpu_line(&text, cpu)
}

/// The `cpuN` line of /proc/stat as (busy, total) jiffies.
pub fn parse_cpu_line(text: &str, cpu: usize) -> Option<(u64, u64)> {
    let tag = format!("cpu{cpu}");
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(tag.as_str()))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest fields are inside user/nice).
    let total: u64 = f.iter().take(8).sum();
    let idle = f.get(3)? + f.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Online CPUs (from sched_getaffinity of this process).
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lines_are_found_by_number() {
        let text = "cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 5 0 5 50 0 0 0 0 0 0\ncpu1 1 2 3 40 4 5 6 0 0 0\ncpu10 9 9 9 9 9 9 9 0 0 0\n";
        assert_eq!(parse_cpu_line(text, 1), Some((1 + 2 + 3 + 5 + 6, 61)));
        assert_eq!(parse_cpu_line(text, 0), Some((10, 60)));
        assert_eq!(parse_cpu_line(text, 2), None);
    }

    #[test]
    fn our_own_cpu_time_grows() {
        let me = std::process::id() as i32;
        let a = cpu_ns(&[me]);
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 20 {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(cpu_ns(&[me]) > a);
    }
}
