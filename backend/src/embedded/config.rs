//! How the embedded engine behaves: simulated timings, the address pools
//! servers and floating IPs draw from, and where (if anywhere) its stacks
//! are kept across restarts.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Configuration of an [`super::EmbeddedBackend`]. Every field has a
/// default, so `EmbeddedConfig::default()` (or `{}` in a config file) is a
/// working in-memory engine.
///
/// ```
/// use occi_so_backend::EmbeddedConfig;
/// let config: EmbeddedConfig = serde_json::from_str(
///     r#"{"resource_delay": "50ms", "state_dir": "/var/lib/occi-so"}"#,
/// ).unwrap();
/// assert_eq!(config.resource_delay, std::time::Duration::from_millis(50));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddedConfig {
    /// How long each simulated resource create, update or delete takes
    /// (`0s` allowed: the state still moves asynchronously through
    /// `*_IN_PROGRESS`). `OS::Heat::TestResource` takes its own `wait_secs`.
    #[serde(with = "humantime_serde")]
    pub resource_delay: Duration,
    /// How long after it starts a `OS::Heat::WaitCondition` is signalled, and
    /// a signalled `OS::Heat::SoftwareDeployment` reports back: the time a
    /// server takes to boot and run its user data. A wait condition whose
    /// `timeout` is shorter fails as Heat's does.
    #[serde(with = "humantime_serde")]
    pub signal_delay: Duration,
    /// The tenant network servers and ports land on when they name no
    /// network created in their stack (addresses, `first_address`).
    pub private_network: NetworkConfig,
    /// The external network floating IPs come from.
    pub floating_network: NetworkConfig,
    /// Keep stacks across restarts under `<state_dir>/embedded/`. Without
    /// it, stacks live in memory only and are gone when the process ends.
    pub state_dir: Option<PathBuf>,
    /// The Heat API base the simulated wait-condition handles point their
    /// `endpoint` and `curl_cli` at (no one answers there: the engine
    /// signals its wait conditions itself).
    pub heat_url: String,
    /// How long a deleted stack stays readable by id (`DELETE_COMPLETE`, as
    /// Heat keeps deleted stacks) before it is forgotten.
    #[serde(with = "humantime_serde")]
    pub deleted_retention: Duration,
    /// Events kept per stack (Heat's `max_events_per_stack`); the oldest are
    /// purged beyond it.
    pub max_events_per_stack: usize,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        EmbeddedConfig {
            resource_delay: Duration::from_millis(20),
            signal_delay: Duration::from_millis(100),
            private_network: NetworkConfig {
                name: "private".into(),
                cidr: "10.0.0.0/16".into(),
            },
            floating_network: NetworkConfig {
                name: "public".into(),
                cidr: "172.24.4.0/22".into(),
            },
            state_dir: None,
            heat_url: "http://127.0.0.1:8004/v1".into(),
            deleted_retention: Duration::from_secs(3600),
            max_events_per_stack: 1000,
        }
    }
}

impl EmbeddedConfig {
    /// No simulated delays at all (tests, benchmarks).
    pub fn instant() -> Self {
        EmbeddedConfig {
            resource_delay: Duration::ZERO,
            signal_delay: Duration::ZERO,
            ..EmbeddedConfig::default()
        }
    }
}

/// A network and the IPv4 block its addresses come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Its name (the key of a server's `addresses` and `networks`).
    pub name: String,
    /// Its subnet, e.g. `10.0.0.0/16`; `.1` is the gateway.
    pub cidr: String,
}

/// An IPv4 block (`10.0.0.0/24`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Cidr {
    /// The network address.
    pub base: u32,
    /// The prefix length.
    pub prefix: u8,
}

/// A CIDR that does not parse or leaves no room for hosts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IPv4 CIDR with room for hosts (like 10.0.0.0/24)")]
pub(crate) struct BadCidr(pub String);

impl FromStr for Cidr {
    type Err = BadCidr;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadCidr(s.to_string());
        let (addr, prefix) = s.trim().split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if !(1..=29).contains(&prefix) {
            return Err(bad());
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Cidr {
            base: u32::from(addr) & mask,
            prefix,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

impl Cidr {
    /// The number of addresses in the block.
    pub(crate) fn size(self) -> u32 {
        1u32 << (32 - self.prefix)
    }
    /// The gateway (`.1`).
    pub(crate) fn gateway(self) -> u32 {
        self.base + 1
    }
    /// The first address handed to ports (after the gateway).
    pub(crate) fn first_host(self) -> u32 {
        self.base + 2
    }
    /// The last address handed to ports (before the broadcast address).
    pub(crate) fn last_host(self) -> u32 {
        self.base + self.size() - 2
    }
    /// Whether `ip` is inside the block.
    pub(crate) fn contains(self, ip: u32) -> bool {
        ip & (u32::MAX << (32 - self.prefix)) == self.base
    }
}

/// Dotted-quad text of an address.
pub(crate) fn ip_text(ip: u32) -> String {
    Ipv4Addr::from(ip).to_string()
}

/// An address from its dotted-quad text.
pub(crate) fn parse_ip(s: &str) -> Option<u32> {
    s.trim().parse::<Ipv4Addr>().ok().map(u32::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_bound_their_hosts() {
        let c: Cidr = "10.0.0.7/24".parse().unwrap();
        assert_eq!(c.to_string(), "10.0.0.0/24");
        assert_eq!(ip_text(c.gateway()), "10.0.0.1");
        assert_eq!(ip_text(c.first_host()), "10.0.0.2");
        assert_eq!(ip_text(c.last_host()), "10.0.0.254");
        assert!(c.contains(parse_ip("10.0.0.200").unwrap()));
        assert!(!c.contains(parse_ip("10.0.1.1").unwrap()));
        for bad in ["10.0.0.0", "10.0.0.0/31", "10.0.0/24", "x/8", "10.0.0.0/0"] {
            let e = bad.parse::<Cidr>().unwrap_err();
            assert_eq!(e.0, bad, "the error names the text");
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn config_reads_from_json_with_defaults() {
        let c: EmbeddedConfig =
            serde_json::from_str(r#"{"resource_delay": "0s", "signal_delay": "2s"}"#).unwrap();
        assert_eq!(c.resource_delay, Duration::ZERO);
        assert_eq!(c.signal_delay, Duration::from_secs(2));
        assert_eq!(c.private_network.name, "private");
        let e = serde_json::from_str::<EmbeddedConfig>(r#"{"resource_dealy": "1s"}"#).unwrap_err();
        assert!(
            e.to_string().starts_with("unknown field `resource_dealy`"),
            "the misspelt key is named: {e}"
        );
    }
}
