//! Identifiers as Heat and the services behind it make them: UUIDs,
//! Heat's physical resource names (`stack-resource-abcdefghijkl`), nested
//! stack ARNs, event ids, MAC addresses; and the wall clock in Heat's format.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use uuid::Uuid;

/// A fresh random (v4) UUID.
pub(crate) fn new_uuid() -> Uuid {
    Uuid::new_v4()
}

/// A fresh random 60-bit short id for a physical resource name.
pub(crate) fn new_short_id() -> u64 {
    rand::rng().random::<u64>() >> 4
}

/// Heat's 12-character short id (lower-case base32, as in
/// `p1-word-wk4bjidhyoen`).
pub(crate) fn short_id_text(short: u64) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    (0..12)
        .map(|i| ALPHABET[((short >> (55 - 5 * i)) & 31) as usize] as char)
        .collect()
}

/// Heat's `physical_resource_name()`: `<stack>-<resource>-<short id>`.
pub(crate) fn physical_name(stack: &str, resource: &str, short: u64) -> String {
    format!("{stack}-{resource}-{}", short_id_text(short))
}

/// The reference Heat gives a nested stack (`get_resource` of a template
/// resource or a group member).
pub(crate) fn stack_arn(project: &str, name: &str, id: &Uuid) -> String {
    format!("arn:openstack:heat::{project}:stacks/{name}/{id}")
}

/// A stable, UUID-shaped id derived from `seed` and `n` (event ids, the ids
/// of named networks): the same inputs give the same id across restarts.
pub(crate) fn derived_uuid(seed: &Uuid, n: u64) -> Uuid {
    let (hi, lo) = seed.as_u64_pair();
    let a = mix(hi ^ n.rotate_left(17));
    let b = mix(lo ^ a ^ n);
    uuid::Builder::from_random_bytes(((u128::from(a) << 64) | u128::from(b)).to_be_bytes())
        .into_uuid()
}

/// The id of a network known only by name.
pub(crate) fn named_uuid(name: &str) -> Uuid {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    derived_uuid(&Uuid::from_u64_pair(h, !h), name.len() as u64)
}

/// splitmix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A Neutron-style MAC address (`fa:16:3e:..`) derived from a port's id.
pub(crate) fn mac_address(id: &Uuid) -> String {
    let b = id.as_bytes();
    format!("fa:16:3e:{:02x}:{:02x}:{:02x}", b[13], b[14], b[15])
}

/// Seconds since the Unix epoch, now.
pub(crate) fn now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

/// Heat's timestamp format: `2026-11-22T03:50:56Z`.
pub(crate) fn iso_time(secs: u32) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(u64::from(secs))).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_look_like_heats() {
        let s = short_id_text(new_short_id());
        assert_eq!(s.len(), 12);
        assert!(s
            .bytes()
            .all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(&c)));
        assert_eq!(physical_name("p1", "word", 0), "p1-word-aaaaaaaaaaaa");
        assert_eq!(iso_time(1_795_000_000), "2026-11-18T11:06:40Z");
        let id = Uuid::nil();
        assert_eq!(derived_uuid(&id, 3), derived_uuid(&id, 3));
        assert_ne!(derived_uuid(&id, 3), derived_uuid(&id, 4));
        assert_eq!(derived_uuid(&id, 3).get_version_num(), 4);
        assert_eq!(named_uuid("private"), named_uuid("private"));
        assert!(mac_address(&new_uuid()).starts_with("fa:16:3e:"));
    }
}
