//! The configured networks' address pools, shared by every stack of every
//! tenant (as a provider network is): ports and servers take fixed
//! addresses from the private pool, floating IPs from the floating pool,
//! and give them back when they are deleted.

use std::collections::HashSet;
use std::sync::Mutex;

use uuid::Uuid;

use super::config::{ip_text, BadCidr, Cidr, NetworkConfig};
use super::ids::named_uuid;

/// One network's pool of IPv4 addresses.
#[derive(Debug)]
pub(crate) struct Pool {
    /// The network's name.
    pub name: String,
    /// The network's id (stable, derived from its name).
    pub network_id: Uuid,
    /// The id of its one subnet.
    pub subnet_id: Uuid,
    /// Its block.
    pub cidr: Cidr,
    used: Mutex<Used>,
}

#[derive(Debug, Default)]
struct Used {
    taken: HashSet<u32>,
    cursor: u32,
}

/// Why no address could be had, worded as Neutron answers.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PoolError {
    /// Every address is taken.
    #[error("IpAddressGenerationFailure: No more IP addresses available on network {0}.")]
    Exhausted(Uuid),
    /// The address asked for is taken.
    #[error("IpAddressAlreadyAllocated: IP address {ip} already allocated in subnet {subnet}")]
    Taken {
        /// The address.
        ip: String,
        /// The subnet.
        subnet: Uuid,
    },
}

impl Pool {
    /// The pool of a configured network.
    pub(crate) fn new(config: &NetworkConfig) -> Result<Pool, BadCidr> {
        let cidr: Cidr = config.cidr.parse()?;
        let network_id = named_uuid(&config.name);
        Ok(Pool {
            name: config.name.clone(),
            network_id,
            subnet_id: named_uuid(&format!("{}-subnet", config.name)),
            cidr,
            used: Mutex::new(Used {
                taken: HashSet::new(),
                cursor: cidr.first_host(),
            }),
        })
    }

    /// Whether `name_or_id` names this network.
    pub(crate) fn is(&self, name_or_id: &str) -> bool {
        name_or_id == self.name || name_or_id == self.network_id.to_string()
    }

    /// The next free address, searching on from the last one handed out
    /// (so freed addresses are not reused at once, as Neutron does).
    pub(crate) fn allocate(&self) -> Result<u32, PoolError> {
        let (first, last) = (self.cidr.first_host(), self.cidr.last_host());
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        let span = last - first + 1;
        for _ in 0..span {
            let ip = used.cursor;
            used.cursor = if ip >= last { first } else { ip + 1 };
            if used.taken.insert(ip) {
                return Ok(ip);
            }
        }
        Err(PoolError::Exhausted(self.network_id))
    }

    /// Takes a given address (a port's `fixed_ips`, an explicit floating IP,
    /// or one read back from the state dir).
    pub(crate) fn reserve(&self, ip: u32) -> Result<(), PoolError> {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        if used.taken.insert(ip) {
            Ok(())
        } else {
            Err(PoolError::Taken {
                ip: ip_text(ip),
                subnet: self.subnet_id,
            })
        }
    }

    /// Gives an address back.
    pub(crate) fn release(&self, ip: u32) {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        used.taken.remove(&ip);
    }

    /// How many addresses are in use.
    pub(crate) fn in_use(&self) -> usize {
        self.used.lock().map(|u| u.taken.len()).unwrap_or(0)
    }
}

/// The private and floating pools.
#[derive(Debug)]
pub(crate) struct Pools {
    /// Where fixed addresses come from.
    pub private: Pool,
    /// Where floating IPs come from.
    pub floating: Pool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(cidr: &str) -> Pool {
        Pool::new(&NetworkConfig {
            name: "private".into(),
            cidr: cidr.into(),
        })
        .unwrap()
    }

    #[test]
    fn hands_out_every_host_once_then_reports_exhaustion() {
        let p = pool("10.9.0.0/29");
        let got: Vec<String> = (0..5).map(|_| ip_text(p.allocate().unwrap())).collect();
        assert_eq!(
            got,
            ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"]
        );
        let e = p.allocate().unwrap_err();
        assert!(e
            .to_string()
            .starts_with("IpAddressGenerationFailure: No more IP addresses"));
        p.release(crate::embedded::config::parse_ip("10.9.0.4").unwrap());
        assert_eq!(ip_text(p.allocate().unwrap()), "10.9.0.4");
        assert_eq!(p.in_use(), 5);
    }

    #[test]
    fn reserved_addresses_are_skipped_and_not_taken_twice() {
        let p = pool("10.9.0.0/24");
        let ip = crate::embedded::config::parse_ip("10.9.0.2").unwrap();
        p.reserve(ip).unwrap();
        assert!(p
            .reserve(ip)
            .unwrap_err()
            .to_string()
            .contains("already allocated"));
        assert_eq!(ip_text(p.allocate().unwrap()), "10.9.0.3");
        assert!(p.is("private") && p.is(&p.network_id.to_string()) && !p.is("public"));
    }
}
