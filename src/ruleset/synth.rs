//! Synthetic rule sets at real scale, for benchmarks and tests: a kube-proxy (iptables mode)
//! world of services and endpoints, written exactly as `iptables-save -c` prints it, so that
//! restoring it into a kernel and saving it again gives the same lines back. Deterministic: the
//! same size always gives the same text.

use std::fmt::Write;

/// splitmix64: a tiny deterministic mixer; good enough for names, addresses and counters.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A kube-proxy style chain suffix: 16 characters of base32, as kube-proxy cuts from a sha256.
fn hash16(seed: u64) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (a, b) = (mix(seed), mix(seed ^ 0xA5A5_A5A5_A5A5_A5A5));
    (0..16)
        .map(|i| {
            let v = if i < 12 {
                a >> (i * 5)
            } else {
                b >> ((i - 12) * 5)
            };
            ALPHABET[(v & 31) as usize] as char
        })
        .collect()
}

/// Counters that look lived-in: most rules have seen some traffic, some none.
fn counters(seed: u64) -> String {
    let r = mix(seed);
    if r % 4 == 0 {
        return "[0:0]".to_string();
    }
    let packets = (r >> 8) % 100_000;
    let bytes = packets * (60 + (r >> 40) % 1400);
    format!("[{packets}:{bytes}]")
}

/// How `-m statistic --probability` comes back from the kernel: it stores `p * 2^31` rounded to
/// a whole number and prints it with eleven decimals.
fn probability(p: f64) -> String {
    let stored = (p * 2_147_483_648.0).round();
    format!("{:.11}", stored / 2_147_483_648.0)
}

const NAMESPACES: [&str; 6] = [
    "default",
    "kube-system",
    "payments",
    "web",
    "monitoring",
    "batch",
];
const PORTS: [(&str, u16); 4] = [
    ("http", 80),
    ("https", 443),
    ("grpc", 9090),
    ("metrics", 9100),
];

/// Rules a table holds, chain by chain; written in the order iptables-save lists them
/// (built-in chains first in kernel order, then user chains sorted by name).
struct TableText {
    name: &'static str,
    builtin: &'static [&'static str],
    chains: std::collections::BTreeMap<String, Vec<String>>,
    builtin_rules: Vec<Vec<String>>,
    seed: u64,
}

impl TableText {
    fn new(name: &'static str, builtin: &'static [&'static str], seed: u64) -> Self {
        TableText {
            name,
            builtin,
            chains: Default::default(),
            builtin_rules: vec![Vec::new(); builtin.len()],
            seed,
        }
    }

    fn chain(&mut self, name: &str) {
        self.chains.entry(name.to_string()).or_default();
    }

    fn rule(&mut self, chain: &str, args: String) {
        match self.builtin.iter().position(|b| *b == chain) {
            Some(i) => self.builtin_rules[i].push(args),
            None => self.chains.entry(chain.to_string()).or_default().push(args),
        }
    }

    fn rule_count(&self) -> usize {
        self.builtin_rules.iter().map(Vec::len).sum::<usize>()
            + self.chains.values().map(Vec::len).sum::<usize>()
    }

    fn write(&self, out: &mut String) {
        let _ = writeln!(out, "*{}", self.name);
        let mut n = self.seed;
        for b in self.builtin {
            n += 1;
            let _ = writeln!(out, ":{b} ACCEPT {}", counters(n));
        }
        for c in self.chains.keys() {
            let _ = writeln!(out, ":{c} - [0:0]");
        }
        let builtin = self
            .builtin
            .iter()
            .zip(&self.builtin_rules)
            .map(|(c, r)| (*c, r));
        let user = self.chains.iter().map(|(c, r)| (c.as_str(), r));
        for (chain, rules) in builtin.chain(user) {
            for args in rules {
                n += 1;
                let _ = writeln!(out, "{} -A {chain} {args}", counters(n));
            }
        }
        out.push_str("COMMIT\n");
    }
}

/// An IPv4 rule set shaped like kube-proxy's on a large cluster, with exactly `rules` rules
/// (at least the 21 fixed ones): a nat table with `KUBE-SERVICES` jumping to one `KUBE-SVC-*`
/// chain per service, which picks an endpoint's `KUBE-SEP-*` chain with `-m statistic`, which
/// DNATs; and a filter table with `KUBE-FORWARD`, `KUBE-FIREWALL` and REJECT rules for services
/// without endpoints.
pub fn kube_proxy(rules: usize) -> String {
    let mut nat = TableText::new(
        "nat",
        &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
        1 << 40,
    );
    let mut filter = TableText::new("filter", &["INPUT", "FORWARD", "OUTPUT"], 2 << 40);
    let q = |s: &str| format!("\"{s}\"");

    for c in [
        "KUBE-MARK-MASQ",
        "KUBE-NODEPORTS",
        "KUBE-POSTROUTING",
        "KUBE-SERVICES",
    ] {
        nat.chain(c);
    }
    let portals = q("kubernetes service portals");
    nat.rule(
        "PREROUTING",
        format!("-m comment --comment {portals} -j KUBE-SERVICES"),
    );
    nat.rule(
        "OUTPUT",
        format!("-m comment --comment {portals} -j KUBE-SERVICES"),
    );
    nat.rule(
        "POSTROUTING",
        format!(
            "-m comment --comment {} -j KUBE-POSTROUTING",
            q("kubernetes postrouting rules")
        ),
    );
    nat.rule("KUBE-MARK-MASQ", "-j MARK --set-xmark 0x4000/0x4000".into());
    nat.rule(
        "KUBE-POSTROUTING",
        "-m mark ! --mark 0x4000/0x4000 -j RETURN".into(),
    );
    nat.rule("KUBE-POSTROUTING", "-j MARK --set-xmark 0x4000/0x0".into());
    nat.rule(
        "KUBE-POSTROUTING",
        format!(
            "-m comment --comment {} -j MASQUERADE --random-fully",
            q("kubernetes service traffic requiring SNAT")
        ),
    );

    for c in [
        "KUBE-EXTERNAL-SERVICES",
        "KUBE-FIREWALL",
        "KUBE-FORWARD",
        "KUBE-NODEPORTS",
        "KUBE-PROXY-FIREWALL",
        "KUBE-SERVICES",
    ] {
        filter.chain(c);
    }
    let lb = q("kubernetes load balancer firewall");
    filter.rule(
        "INPUT",
        format!("-m conntrack --ctstate NEW -m comment --comment {lb} -j KUBE-PROXY-FIREWALL"),
    );
    filter.rule(
        "INPUT",
        format!(
            "-m comment --comment {} -j KUBE-NODEPORTS",
            q("kubernetes health check service ports")
        ),
    );
    filter.rule(
        "INPUT",
        format!(
            "-m conntrack --ctstate NEW -m comment --comment {} -j KUBE-EXTERNAL-SERVICES",
            q("kubernetes externally-visible service portals")
        ),
    );
    filter.rule("INPUT", "-j KUBE-FIREWALL".into());
    filter.rule(
        "FORWARD",
        format!(
            "-m comment --comment {} -j KUBE-FORWARD",
            q("kubernetes forwarding rules")
        ),
    );
    filter.rule(
        "FORWARD",
        format!("-m conntrack --ctstate NEW -m comment --comment {portals} -j KUBE-SERVICES"),
    );
    filter.rule(
        "OUTPUT",
        format!("-m conntrack --ctstate NEW -m comment --comment {lb} -j KUBE-PROXY-FIREWALL"),
    );
    filter.rule(
        "OUTPUT",
        format!("-m conntrack --ctstate NEW -m comment --comment {portals} -j KUBE-SERVICES"),
    );
    filter.rule("OUTPUT", "-j KUBE-FIREWALL".into());
    filter.rule(
        "KUBE-FIREWALL",
        format!(
            "! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment {} -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
            q("block incoming localnet connections")
        ),
    );
    filter.rule(
        "KUBE-FORWARD",
        "-m conntrack --ctstate INVALID -j DROP".into(),
    );
    filter.rule(
        "KUBE-FORWARD",
        format!(
            "-m comment --comment {} -m mark --mark 0x4000/0x4000 -j ACCEPT",
            q("kubernetes forwarding rules")
        ),
    );
    filter.rule(
        "KUBE-FORWARD",
        format!(
            "-m comment --comment {} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            q("kubernetes forwarding conntrack rule")
        ),
    );
    // The last rule of KUBE-SERVICES, added at the end.
    let fixed = nat.rule_count() + filter.rule_count() + 1;

    let mut left = rules.saturating_sub(fixed);
    let mut svc = 0u64;
    while left > 0 {
        let r = mix(svc);
        let ns = NAMESPACES[(r % NAMESPACES.len() as u64) as usize];
        let (port_name, port) = PORTS[((r >> 8) % PORTS.len() as u64) as usize];
        let name = format!("{ns}/svc-{svc}:{port_name}");
        let cluster_ip = format!(
            "10.{}.{}.{}",
            96 + (svc >> 16) % 16,
            (svc >> 8) & 255,
            svc & 255
        );
        // 1 to 5 endpoints; one service in twenty has none. A service with k endpoints costs
        // 2 + 3k rules; when fewer are left, take fewer endpoints, or none.
        let mut k = if r % 20 == 0 { 0 } else { 1 + (r >> 16) % 5 } as usize;
        if left < 2 + 3 * k {
            k = (left.saturating_sub(2)) / 3;
        }
        if k == 0 {
            filter.rule(
                "KUBE-SERVICES",
                format!(
                    "-d {cluster_ip}/32 -p tcp -m comment --comment {} -m tcp --dport {port} -j REJECT --reject-with icmp-port-unreachable",
                    q(&format!("{name} has no endpoints"))
                ),
            );
            left -= 1;
            svc += 1;
            continue;
        }
        let svc_chain = format!("KUBE-SVC-{}", hash16(r));
        let ip_comment = q(&format!("{name} cluster IP"));
        nat.rule(
            "KUBE-SERVICES",
            format!(
                "-d {cluster_ip}/32 -p tcp -m comment --comment {ip_comment} -m tcp --dport {port} -j {svc_chain}"
            ),
        );
        nat.rule(
            &svc_chain,
            format!(
                "! -s 10.244.0.0/16 -d {cluster_ip}/32 -p tcp -m comment --comment {ip_comment} -m tcp --dport {port} -j KUBE-MARK-MASQ"
            ),
        );
        for j in 0..k {
            let e = svc * 8 + j as u64;
            let ep = format!("10.{}.{}.{}", 244 + (e >> 16) % 12, (e >> 8) & 255, e & 255);
            let target_port = 8000 + (r >> 24) % 1000;
            let sep_chain = format!("KUBE-SEP-{}", hash16(e ^ (1 << 63)));
            let statistic = if j + 1 < k {
                format!(
                    " -m statistic --mode random --probability {}",
                    probability(1.0 / (k - j) as f64)
                )
            } else {
                String::new()
            };
            nat.rule(
                &svc_chain,
                format!(
                    "-m comment --comment {}{statistic} -j {sep_chain}",
                    q(&format!("{name} -> {ep}:{target_port}"))
                ),
            );
            let ep_comment = q(&name);
            nat.rule(
                &sep_chain,
                format!("-s {ep}/32 -m comment --comment {ep_comment} -j KUBE-MARK-MASQ"),
            );
            nat.rule(
                &sep_chain,
                format!(
                    "-p tcp -m comment --comment {ep_comment} -m tcp -j DNAT --to-destination {ep}:{target_port}"
                ),
            );
        }
        left -= 2 + 3 * k;
        svc += 1;
    }
    nat.rule(
        "KUBE-SERVICES",
        format!(
            "-m comment --comment {} -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS",
            q("kubernetes service nodeports; NOTE: this must be the last rule in this chain")
        ),
    );

    let mut out = String::with_capacity(rules * 160);
    out.push_str("# Generated by nfscope's kube-proxy generator\n");
    filter.write(&mut out);
    nat.write(&mut out);
    out.push_str("# Completed\n");
    out
}

/// An IPv4 filter table shaped like a firewall generated for a site with many zones
/// (Shorewall's style), with about `rules` rules: zone `i` is `10.i.0.0/16`; FORWARD accepts
/// ESTABLISHED, drops INVALID, then sends each (source zone, destination zone) pair to its own
/// user chain `zI-zJ` (hundreds of chains), which accepts some services to some hosts and
/// subnets, drops some hosts, rate-limits SSH with `recent`, logs with a limit and rejects the
/// rest; what is left over goes to INPUT as per-host SSH accepts. For the reachability bench.
pub fn zoned(rules: usize) -> String {
    const K: usize = 12;
    let mut f = TableText::new("filter", &["INPUT", "FORWARD", "OUTPUT"], 3 << 40);
    f.rule(
        "FORWARD",
        "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT".into(),
    );
    f.rule("FORWARD", "-m conntrack --ctstate INVALID -j DROP".into());
    let zones = ((rules as f64 / (K + 1) as f64).sqrt() as usize).clamp(2, 250);
    for i in 0..zones {
        for j in 0..zones {
            let chain = format!("z{i}-z{j}");
            f.chain(&chain);
            f.rule(
                "FORWARD",
                format!("-s 10.{i}.0.0/16 -d 10.{j}.0.0/16 -j {chain}"),
            );
            for r in 0..K - 1 {
                let x = mix((i * 1000 + j * 10 + r) as u64);
                let (a, b) = ((x >> 8) % 250, (x >> 16) % 250);
                let port = [22, 25, 53, 80, 443, 3306, 5432, 8080][(x % 8) as usize];
                let args = match r % 6 {
                    0 => format!(
                        "-s 10.{i}.{a}.0/24 -d 10.{j}.{b}.{}/32 -p tcp -m tcp --dport {port} -j ACCEPT",
                        (x >> 24) % 250
                    ),
                    1 => {
                        format!("-d 10.{j}.{a}.0/24 -p tcp -m multiport --dports 80,443 -j ACCEPT")
                    }
                    2 => format!("-s 10.{i}.{a}.{b}/32 -j DROP"),
                    3 => "-p udp -m udp --dport 53 -j ACCEPT".into(),
                    4 => format!(
                        "-p tcp -m tcp --dport 22 -m recent --rcheck --seconds 60 --hitcount 4 --name ssh{i} --mask 255.255.255.255 --rsource -j DROP"
                    ),
                    _ => format!(
                        "-m limit --limit 5/min -j LOG --log-prefix \"{chain} \" --log-level 6"
                    ),
                };
                f.rule(&chain, args);
            }
            f.rule(
                &chain,
                "-j REJECT --reject-with icmp-port-unreachable".into(),
            );
        }
    }
    f.rule("FORWARD", "-j DROP".into());
    let mut n = 0u64;
    while f.rule_count() < rules {
        let x = mix(n ^ 0x5EED);
        f.rule(
            "INPUT",
            format!(
                "-s 10.{}.{}.{}/32 -p tcp -m tcp --dport 22 -j ACCEPT",
                x % zones as u64,
                (x >> 8) % 250,
                (x >> 16) % 250
            ),
        );
        n += 1;
    }
    let mut out = String::with_capacity(rules * 120);
    out.push_str("# Generated by nfscope's zoned-firewall generator\n");
    f.write(&mut out);
    out.push_str("# Completed\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruleset::{Family, parse, save};

    #[test]
    fn exact_size_and_deterministic() {
        for n in [0, 21, 22, 23, 24, 25, 26, 1000, 12_345] {
            let text = kube_proxy(n);
            let rs = parse(&text, Family::V4).unwrap();
            assert_eq!(rs.rule_count(), n.max(21), "size {n}");
            assert_eq!(text, kube_proxy(n));
        }
    }

    #[test]
    fn the_zoned_firewall_has_its_size_and_hundreds_of_chains() {
        let text = zoned(5_500);
        let rs = parse(&text, Family::V4).unwrap();
        assert_eq!(rs.rule_count(), 5_500);
        let chains: usize = rs.tables.iter().map(|t| t.chains.len()).sum();
        assert!(chains > 300, "{chains} chains");
        assert_eq!(text, zoned(5_500));
        // Small sizes still make a firewall (at least two zones).
        assert!(parse(&zoned(10), Family::V4).unwrap().rule_count() >= 10);
    }

    #[test]
    fn round_trips_through_the_writer() {
        let text = kube_proxy(5_000);
        let rs = parse(&text, Family::V4).unwrap();
        assert_eq!(save::write(&rs, save::SaveOptions::default()), text);
        let nat = rs.table("nat").unwrap();
        let svc = nat
            .chains
            .iter()
            .find(|c| c.name.starts_with("KUBE-SVC-"))
            .unwrap();
        assert_eq!(nat.references(&svc.name), 1);
        assert!(svc.name.len() <= 28);
    }

    #[test]
    fn probabilities_are_printed_as_the_kernel_does() {
        assert_eq!(probability(0.5), "0.50000000000");
        assert_eq!(probability(1.0 / 3.0), "0.33333333349");
        assert_eq!(probability(0.25), "0.25000000000");
    }
}
