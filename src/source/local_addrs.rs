//! This machine's addresses, for the tracer's routing decision (local or forwarded), addrtype
//! LOCAL, MASQUERADE and REDIRECT: `ip -j addr show` (run by argv, never a shell), else
//! /proc/net/if_inet6 and /proc/net/fib_trie. Also the demo world's addresses, which the demo
//! rule sets are written for.

use super::kernel::find_tool;
use crate::trace::LocalAddr;
use serde::Deserialize;
use std::process::{Command, Stdio};

#[derive(Deserialize)]
struct Link {
    ifname: Option<String>,
    #[serde(default)]
    addr_info: Vec<AddrInfo>,
}

#[derive(Deserialize)]
struct AddrInfo {
    local: Option<String>,
    prefixlen: Option<u8>,
}

/// Read the addresses of the network namespace this process runs in.
pub fn read() -> Result<Vec<LocalAddr>, String> {
    match from_ip() {
        Ok(a) => Ok(a),
        Err(ip_err) => from_proc().map_err(|proc_err| format!("{ip_err}; {proc_err}")),
    }
}

fn from_ip() -> Result<Vec<LocalAddr>, String> {
    let ip = find_tool("ip").ok_or("`ip` was not found (install iproute2)")?;
    let out = Command::new(ip)
        .args(["-j", "addr", "show"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `ip -j addr show`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`ip -j addr show` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    parse_ip_json(&String::from_utf8_lossy(&out.stdout))
}

/// What `ip -j addr show` prints: one object per link, each with its `addr_info`.
pub fn parse_ip_json(text: &str) -> Result<Vec<LocalAddr>, String> {
    let links: Vec<Link> = serde_json::from_str(text)
        .map_err(|e| format!("cannot read the output of `ip -j addr show`: {e}"))?;
    let mut out = Vec::new();
    for link in links {
        for a in link.addr_info {
            let Some(addr) = a.local.and_then(|l| l.parse().ok()) else {
                continue;
            };
            let max = if matches!(addr, std::net::IpAddr::V4(_)) {
                32
            } else {
                128
            };
            out.push(LocalAddr {
                addr,
                prefix: a.prefixlen.unwrap_or(max).min(max),
                iface: link.ifname.clone(),
            });
        }
    }
    Ok(out)
}

fn from_proc() -> Result<Vec<LocalAddr>, String> {
    let v6 = std::fs::read_to_string("/proc/net/if_inet6").unwrap_or_default();
    let v4 = std::fs::read_to_string("/proc/net/fib_trie")
        .map_err(|e| format!("cannot read /proc/net/fib_trie: {e}"))?;
    let mut out = parse_fib_trie(&v4);
    out.extend(parse_if_inet6(&v6));
    Ok(out)
}

/// `/proc/net/if_inet6`: `ADDR32HEX IFINDEX PREFIXLEN SCOPE FLAGS NAME` per line.
pub fn parse_if_inet6(text: &str) -> Vec<LocalAddr> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [hex, _, prefix, _, _, name] = f[..] else {
                return None;
            };
            let bits = u128::from_str_radix(hex, 16).ok()?;
            Some(LocalAddr {
                addr: std::net::Ipv6Addr::from(bits).into(),
                prefix: u8::from_str_radix(prefix, 16).ok()?.min(128),
                iface: Some(name.to_string()),
            })
        })
        .collect()
}

/// `/proc/net/fib_trie`: the `|-- ADDR` lines followed by `/32 host LOCAL` are this machine's
/// IPv4 addresses (their prefix length and interface are not in this file).
pub fn parse_fib_trie(text: &str) -> Vec<LocalAddr> {
    let mut out: Vec<LocalAddr> = Vec::new();
    let mut last: Option<std::net::IpAddr> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(a) = t.strip_prefix("|-- ") {
            last = a.trim().parse().ok();
        } else if t == "/32 host LOCAL"
            && let Some(a) = last
            && !out.iter().any(|l| l.addr == a)
        {
            out.push(LocalAddr {
                addr: a,
                prefix: 32,
                iface: None,
            });
        }
    }
    out
}

/// The demo gateway gw01 (assets/demo-v4.rules, demo-v6.rules): lan0 and wan0, both families.
pub fn demo() -> Vec<LocalAddr> {
    [
        "10.0.0.1/24%lan0",
        "203.0.113.2/24%wan0",
        "2001:db8:10::1/64%lan0",
        "fe80::1/64%lan0",
        "2001:db8:ffff::2/64%wan0",
    ]
    .iter()
    .filter_map(|s| LocalAddr::parse(s).ok())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ip_json() {
        let text = r#"[{"ifindex":1,"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8},{"family":"inet6","local":"::1","prefixlen":128}]},
            {"ifindex":2,"ifname":"eth0","addr_info":[{"family":"inet","local":"192.0.2.2","prefixlen":24}]},{"ifindex":3,"ifname":"dummy0"}]"#;
        let a = parse_ip_json(text).unwrap();
        let shown: Vec<String> = a.iter().map(LocalAddr::to_string).collect();
        assert_eq!(shown, ["127.0.0.1/8%lo", "::1/128%lo", "192.0.2.2/24%eth0"]);
        assert!(parse_ip_json("not json").is_err());
    }

    #[test]
    fn reads_proc() {
        let v6 = "fd000000000000000000000000000002 04 40 00 82     eth0\n00000000000000000000000000000001 01 80 10 80       lo\n";
        let shown: Vec<String> = parse_if_inet6(v6)
            .iter()
            .map(LocalAddr::to_string)
            .collect();
        assert_eq!(shown, ["fd00::2/64%eth0", "::1/128%lo"]);
        let trie = "Local:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 127.0.0.0\n        /8 host LOCAL\n     |-- 127.0.0.1\n        /32 host LOCAL\n     |-- 192.0.2.2\n        /32 host LOCAL\n     |-- 192.0.2.255\n        /32 link BROADCAST\n";
        let shown: Vec<String> = parse_fib_trie(trie)
            .iter()
            .map(LocalAddr::to_string)
            .collect();
        assert_eq!(shown, ["127.0.0.1/32", "192.0.2.2/32"]);
    }

    #[test]
    fn demo_addresses_parse() {
        assert_eq!(demo().len(), 5);
    }
}
