//! The lockout check: before a commit, would the staged rule set still carry the user's own SSH
//! session? Pure: the session comes from `SSH_CONNECTION` ("client_ip client_port server_ip
//! server_port"), the rule sets and this machine's addresses are given, and the tracer decides.
//!
//! Three flows are traced: the session's packets arriving from the client (ESTABLISHED), the
//! server's answers leaving for it (ESTABLISHED, sent locally), and a new connection from the
//! same client to the same port (NEW, a SYN), which is how the user gets back in after a
//! reconnect. A flow is a finding when the staged rule set does not certainly accept it, unless
//! it fares exactly as it did under the base (then the change did not cause it, and an
//! undecidable match such as `-m recent` does not cry wolf on every commit).

use crate::ruleset::{Family, Ruleset};
use crate::source::Backend;
use crate::trace::nft::Native;
use crate::trace::{CtState, LocalAddr, Origin, Packet, Trace, TraceOptions, Tracer, Verdict};
use std::net::IpAddr;

/// The current SSH session, as `SSH_CONNECTION` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub client: IpAddr,
    pub client_port: u16,
    pub server: IpAddr,
    pub server_port: u16,
}

impl Session {
    pub fn family(&self) -> Family {
        crate::trace::packet::family_of(self.server)
    }
}

/// Read `SSH_CONNECTION`: four words, two addresses and two ports. An IPv4 client seen through
/// an IPv6 socket (`::ffff:192.0.2.7`) counts as IPv4, as the kernel's IPv4 rules see it.
pub fn parse_ssh_connection(s: &str) -> Option<Session> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [client, cport, server, sport] = parts[..] else {
        return None;
    };
    let addr = |a: &str| -> Option<IpAddr> {
        let ip: IpAddr = a.parse().ok()?;
        Some(match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        })
    };
    let session = Session {
        client: addr(client)?,
        client_port: cport.parse().ok()?,
        server: addr(server)?,
        server_port: sport.parse().ok()?,
    };
    // Both ends of one socket are of one family.
    (session.client.is_ipv4() == session.server.is_ipv4()).then_some(session)
}

/// One flow of the session that the staged rule set would no longer carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// "your session's packets from 192.0.2.7:51000 to 192.0.2.1:22 (ESTABLISHED)".
    pub flow: String,
    /// The trace's one-line answer under the staged rule set: "DROP", "ACCEPT or DROP (...)".
    pub verdict: String,
    /// The rule that decides against it: "rule 1 of chain INPUT: -p tcp --dport 22 -j DROP", or
    /// "the policy of chain INPUT (DROP)".
    pub deciding: Option<String>,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} would be {}", self.flow, self.verdict)?;
        if let Some(d) = &self.deciding {
            write!(f, ", decided by {d}")?;
        }
        Ok(())
    }
}

/// The flows the check traces, each with how it is described to the user.
fn flows(s: &Session, local: &[LocalAddr]) -> Vec<(String, Packet)> {
    // The interface the session runs over: the one holding the server's address (loopback for
    // 127.0.0.1 and ::1). Unknown when the address is not among the local ones.
    let iface = local
        .iter()
        .find(|l| l.addr == s.server)
        .and_then(|l| l.iface.clone())
        .or_else(|| s.server.is_loopback().then(|| "lo".to_string()));

    let mut inbound = Packet::new(6, s.client, s.server);
    inbound.sport = Some(s.client_port);
    inbound.dport = Some(s.server_port);
    inbound.state = CtState::Established;
    inbound.in_iface = iface.clone();

    let mut outbound = Packet::new(6, s.server, s.client);
    outbound.origin = Origin::Local;
    outbound.sport = Some(s.server_port);
    outbound.dport = Some(s.client_port);
    outbound.state = CtState::Established;
    outbound.out_iface = iface.clone();

    let mut new = Packet::new(6, s.client, s.server);
    new.dport = Some(s.server_port);
    new.in_iface = iface;

    vec![
        (
            format!(
                "your session's packets from {} to {} (ESTABLISHED)",
                endpoint(s.client, s.client_port),
                endpoint(s.server, s.server_port)
            ),
            inbound,
        ),
        (
            format!(
                "this machine's replies to your session, from {} to {} (ESTABLISHED)",
                endpoint(s.server, s.server_port),
                endpoint(s.client, s.client_port)
            ),
            outbound,
        ),
        (
            format!(
                "a new SSH connection from {} to {} (NEW, SYN)",
                s.client,
                endpoint(s.server, s.server_port)
            ),
            new,
        ),
    ]
}

fn endpoint(a: IpAddr, port: u16) -> String {
    match a {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// The flows of `session` that `staged` would stop (or no longer certainly carry) compared
/// with `base`. Empty: the commit is safe for this session. Families other than the session's
/// are not looked at; a rule set missing for the session's family counts as accepting all
/// (no tables, no filtering), as the kernel does.
///
/// `native`: the native nftables chains the session's packets also meet (the same before and
/// after: a commit never touches them), from `native`.
pub fn check(
    session: &Session,
    base: &[Ruleset],
    staged: &[Ruleset],
    local: &[LocalAddr],
    native: &Native,
) -> Vec<Finding> {
    let family = session.family();
    let Some(staged_rs) = staged.iter().find(|r| r.family == family) else {
        return Vec::new();
    };
    let staged_tracer = Tracer::with_native(staged_rs, native.clone());
    let base_tracer = match base.iter().find(|r| r.family == family) {
        Some(rs) => Tracer::with_native(rs, native.clone()),
        None => Tracer::with_native(&Ruleset::empty(family), native.clone()),
    };
    // The session ends on this machine, so its server address is local whatever the list
    // given says (a namespace, or an address read before it was added).
    let mut local = local.to_vec();
    if !local.iter().any(|l| l.addr == session.server) {
        local.push(LocalAddr {
            addr: session.server,
            prefix: if session.server.is_ipv4() { 32 } else { 128 },
            iface: None,
        });
    }
    let opts = TraceOptions {
        local_addrs: local.clone(),
        ..TraceOptions::default()
    };
    let mut out = Vec::new();
    for (flow, packet) in flows(session, &local) {
        let after = staged_tracer.trace(&packet, &opts);
        if after.certain() == Some(Verdict::Accept) {
            continue;
        }
        let before = base_tracer.trace(&packet, &opts);
        if before.certain() != Some(Verdict::Accept) && before.verdicts() == after.verdicts() {
            continue;
        }
        out.push(Finding {
            flow,
            verdict: after.summary(),
            deciding: deciding(&after, staged_rs, native),
        });
    }
    out
}

/// The native nftables chains of this machine (its network namespace) that packets of
/// `family` meet beside the iptables rule sets `now` (read from the kernel on `backend`): for
/// the lockout check. None, with the reason, when they cannot be read.
pub fn native(family: Family, now: &[Ruleset], backend: Backend) -> Result<Native, String> {
    let empty = Ruleset::empty(family);
    let rs = now.iter().find(|r| r.family == family).unwrap_or(&empty);
    crate::source::native::tracer_native(backend, rs)
}

/// The rule (or policy) that decides the first path not ending in ACCEPT, with its text.
fn deciding(t: &Trace, rs: &Ruleset, native: &Native) -> Option<String> {
    let path = t.paths.iter().find(|p| p.verdict != Verdict::Accept)?;
    let step = path.decider()?;
    let place = step.place();
    if let Some(table) = &step.nft_table {
        let text = step
            .handle
            .and_then(|h| native.rule_text(table, step.chain.as_deref()?, h));
        return Some(match text {
            Some(t) => format!("{place} (native nftables): {t}"),
            None => format!("{place} (native nftables)"),
        });
    }
    let table = step.table.map(|t| t.name())?;
    let chain = rs.table(table)?.chain(step.chain.as_deref()?)?;
    Some(match step.rule_index() {
        Some(i) => match chain.rules.get(i) {
            Some(rule) => format!("{place}: -A {} {}", chain.name, rule.text),
            None => place,
        },
        None => format!(
            "{place} ({})",
            chain.policy.as_deref().unwrap_or("no policy")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruleset::parse;

    const SESSION: &str = "192.0.2.7 51000 192.0.2.1 22";

    fn session() -> Session {
        parse_ssh_connection(SESSION).unwrap()
    }

    fn local() -> Vec<LocalAddr> {
        vec![LocalAddr::parse("192.0.2.1/24%eth0").unwrap()]
    }

    fn v4(text: &str) -> Vec<Ruleset> {
        vec![parse(text, Family::V4).expect("the test rule set parses")]
    }

    /// A stateful host firewall: established traffic and SSH allowed, everything else dropped.
    const BASE: &str = "*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT
COMMIT
";

    fn findings(staged: &str) -> Vec<Finding> {
        check(
            &session(),
            &v4(BASE),
            &v4(staged),
            &local(),
            &Native::default(),
        )
    }

    #[test]
    fn reads_ssh_connection() {
        let s = session();
        assert_eq!(s.client, "192.0.2.7".parse::<IpAddr>().unwrap());
        assert_eq!((s.client_port, s.server_port), (51000, 22));
        let mapped = parse_ssh_connection("::ffff:192.0.2.7 51000 ::ffff:192.0.2.1 22").unwrap();
        assert_eq!(mapped.family(), Family::V4);
        assert!(parse_ssh_connection("2001:db8::7 51000 2001:db8::1 22").is_some());
        for bad in [
            "",
            "192.0.2.7 51000 192.0.2.1",
            "192.0.2.7 x 192.0.2.1 22",
            "192.0.2.7 51000 2001:db8::1 22",
            "a b c d",
            "192.0.2.7 70000 192.0.2.1 22",
        ] {
            assert_eq!(parse_ssh_connection(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_harmless_change_is_quiet() {
        let staged = BASE.replace(
            "-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT\n",
            "-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 443 -j ACCEPT\n",
        );
        assert_eq!(findings(&staged), vec![]);
        assert_eq!(findings(BASE), vec![]);
    }

    #[test]
    fn a_drop_policy_without_an_established_rule_is_caught() {
        let staged = BASE.replace(
            "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n",
            "",
        );
        let f = findings(&staged);
        assert_eq!(f.len(), 2, "{f:#?}");
        assert!(f[0].flow.contains("ESTABLISHED"), "{f:#?}");
        assert_eq!(f[0].verdict, "DROP");
        assert_eq!(
            f[0].deciding.as_deref(),
            Some("the policy of chain INPUT (DROP)")
        );
        assert!(f[1].flow.contains("new SSH connection"), "{f:#?}");
    }

    #[test]
    fn a_drop_on_port_22_at_the_top_is_caught_with_its_rule() {
        let staged = BASE.replace(
            ":OUTPUT ACCEPT [0:0]\n",
            ":OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j DROP\n",
        );
        let f = findings(&staged);
        assert_eq!(f.len(), 2, "{f:#?}");
        for finding in &f {
            assert_eq!(finding.verdict, "DROP");
            assert_eq!(
                finding.deciding.as_deref(),
                Some("rule 1 of chain INPUT: -A INPUT -p tcp -m tcp --dport 22 -j DROP")
            );
        }
        assert!(
            f[0].to_string()
                .contains("would be DROP, decided by rule 1")
        );
    }

    #[test]
    fn a_flushed_input_chain_with_a_drop_policy_is_caught() {
        let staged = "*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
";
        let f = findings(staged);
        assert_eq!(f.len(), 2, "{f:#?}");
        assert!(f.iter().all(|x| x.verdict == "DROP"));
    }

    #[test]
    fn replies_that_output_drops_are_caught() {
        let staged = BASE.replace(
            ":OUTPUT ACCEPT [0:0]\n",
            ":OUTPUT DROP [0:0]\n-A OUTPUT -p udp -m udp --dport 53 -j ACCEPT\n",
        );
        let f = findings(&staged);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert!(f[0].flow.contains("replies"), "{f:#?}");
        assert_eq!(
            f[0].deciding.as_deref(),
            Some("the policy of chain OUTPUT (DROP)")
        );
    }

    #[test]
    fn an_unknown_match_that_was_there_before_does_not_cry_wolf() {
        let base = BASE.replace(
            "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n",
            "-A INPUT -p tcp -m tcp --dport 22 -m recent --update --seconds 60 --hitcount 4 -j DROP\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n",
        );
        let staged = base.replace("--dport 80", "--dport 8080");
        assert_eq!(
            check(
                &session(),
                &v4(&base),
                &v4(&staged),
                &local(),
                &Native::default()
            ),
            vec![]
        );
        // The same unknown match, new in this change, is named.
        let f = check(
            &session(),
            &v4(BASE),
            &v4(&base),
            &local(),
            &Native::default(),
        );
        assert_eq!(f.len(), 1, "{f:#?}");
        assert!(f[0].verdict.starts_with("DROP or ACCEPT"), "{f:#?}");
        assert!(f[0].verdict.contains("-m recent"), "{f:#?}");
    }

    #[test]
    fn the_server_address_is_local_even_when_not_listed() {
        let staged = BASE.replace(
            ":OUTPUT ACCEPT [0:0]\n",
            ":OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j DROP\n",
        );
        let f = check(&session(), &v4(BASE), &v4(&staged), &[], &Native::default());
        assert_eq!(f.len(), 2, "{f:#?}");
    }

    #[test]
    fn another_family_is_not_looked_at() {
        let v6 = vec![
            parse(
                "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT DROP [0:0]\nCOMMIT\n",
                Family::V6,
            )
            .unwrap(),
        ];
        assert_eq!(
            check(&session(), &v4(BASE), &v6, &local(), &Native::default()),
            vec![]
        );
    }

    #[test]
    fn an_ipv6_session_over_loopback_is_checked() {
        let s = parse_ssh_connection("::1 40000 ::1 22").unwrap();
        let base = vec![
            parse(
                &BASE.replace("-i lo -j ACCEPT", "-p ipv6-icmp -j ACCEPT"),
                Family::V6,
            )
            .unwrap(),
        ];
        let staged = vec![
            parse(
                &BASE.replace(
                    "-A INPUT -i lo -j ACCEPT\n-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n",
                    "",
                ),
                Family::V6,
            )
            .unwrap(),
        ];
        assert_eq!(check(&s, &base, &base, &[], &Native::default()), vec![]);
        // Over loopback the replies come back in through INPUT, so all three flows meet it.
        let f = check(&s, &base, &staged, &[], &Native::default());
        assert_eq!(f.len(), 3, "{f:#?}");
        assert!(f[0].flow.contains("[::1]:40000"), "{f:#?}");
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `SSH_CONNECTION` comes from the environment: anything at all reads cleanly.
        #[test]
        fn any_ssh_connection_text_reads_without_panic(s in ".{0,80}") {
            let _ = parse_ssh_connection(&s);
        }

        #[test]
        fn well_formed_sessions_read_back(a in any::<[u8; 4]>(), b in any::<[u8; 4]>(), p in any::<u16>(), q in any::<u16>()) {
            let (a, b) = (std::net::Ipv4Addr::from(a), std::net::Ipv4Addr::from(b));
            let s = parse_ssh_connection(&format!("{a} {p} {b} {q}")).unwrap();
            prop_assert_eq!((s.client, s.client_port, s.server, s.server_port), (IpAddr::V4(a), p, IpAddr::V4(b), q));
        }
    }
}
