//! The local test Heat as `OpenStackConfig::local_heat` sets it up, except
//! that floating IPs come from a provider template (Heat looks a wildcard
//! up before an exact type, so the Neutron types are listed one by one
//! instead of `OS::Neutron::*`). Shared by the plugin's tests and the
//! server's (`tests/conpaas_support`).

use occi_so_backend::openstack::LOCAL_HEAT_STUBS;
use occi_so_backend::OpenStackConfig;

/// A provider template standing in for Neutron's floating IPs on the local
/// Heat (which has no Neutron): every attribute of `OS::Neutron::FloatingIP`
/// as an output, and an address from TEST-NET-2 (`198.51.100.1NN`) each time.
pub const FLOATING_IP_PROVIDER: &str = include_str!("../fixtures/floating-ip-provider.yaml");

/// The first octets of the provider's addresses.
pub const FLOATING_IP_PREFIX: &str = "198.51.100.";

/// The settings of a backend on the local Heat at `heat` whose floating
/// IPs come from the provider template at `provider` (a URL).
pub fn with_floating_ips(heat: &str, provider: &str) -> OpenStackConfig {
    let mut config = OpenStackConfig::local_heat(heat);
    config.resource_registry = LOCAL_HEAT_STUBS
        .iter()
        .filter(|(k, _)| *k != "OS::Neutron::*")
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for t in ["OS::Neutron::Port", "OS::Neutron::SecurityGroup"] {
        config
            .resource_registry
            .insert(t.into(), "OS::Heat::None".into());
    }
    config
        .resource_registry
        .insert("OS::Neutron::FloatingIP".into(), provider.into());
    config
}
