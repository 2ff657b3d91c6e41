//! HOT template versions: the dates and release names Heat accepts, and what
//! each version changes.

use std::fmt;

/// A `heat_template_version` Heat accepts (Heat 27 registers these; the
/// release names are aliases of dates).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// `2013-05-23` (Icehouse).
    V2013_05_23,
    /// `2014-10-16` (Juno).
    V2014_10_16,
    /// `2015-04-30` (Kilo).
    V2015_04_30,
    /// `2015-10-15` (Liberty).
    V2015_10_15,
    /// `2016-04-08` (Mitaka).
    V2016_04_08,
    /// `2016-10-14`, alias `newton`.
    V2016_10_14,
    /// `2017-02-24`, alias `ocata`.
    V2017_02_24,
    /// `2017-09-01`, alias `pike`.
    V2017_09_01,
    /// `2018-03-02`, alias `queens`.
    V2018_03_02,
    /// `2018-08-31`, alias `rocky`.
    V2018_08_31,
    /// `2021-04-16`, alias `wallaby`.
    V2021_04_16,
}

/// Every accepted spelling and the version it means.
const NAMES: &[(&str, Version)] = &[
    ("2013-05-23", Version::V2013_05_23),
    ("2014-10-16", Version::V2014_10_16),
    ("2015-04-30", Version::V2015_04_30),
    ("2015-10-15", Version::V2015_10_15),
    ("2016-04-08", Version::V2016_04_08),
    ("2016-10-14", Version::V2016_10_14),
    ("2017-02-24", Version::V2017_02_24),
    ("2017-09-01", Version::V2017_09_01),
    ("2018-03-02", Version::V2018_03_02),
    ("2018-08-31", Version::V2018_08_31),
    ("2021-04-16", Version::V2021_04_16),
    ("newton", Version::V2016_10_14),
    ("ocata", Version::V2017_02_24),
    ("pike", Version::V2017_09_01),
    ("queens", Version::V2018_03_02),
    ("rocky", Version::V2018_08_31),
    ("wallaby", Version::V2021_04_16),
];

impl Version {
    /// All versions, oldest first.
    pub const ALL: [Version; 11] = [
        Version::V2013_05_23,
        Version::V2014_10_16,
        Version::V2015_04_30,
        Version::V2015_10_15,
        Version::V2016_04_08,
        Version::V2016_10_14,
        Version::V2017_02_24,
        Version::V2017_09_01,
        Version::V2018_03_02,
        Version::V2018_08_31,
        Version::V2021_04_16,
    ];

    /// The version a `heat_template_version` value names, if Heat accepts it.
    pub fn parse(s: &str) -> Option<Version> {
        NAMES.iter().find(|(n, _)| *n == s).map(|(_, v)| *v)
    }

    /// Every spelling Heat accepts, sorted as Heat lists them in its error.
    pub fn accepted_names() -> Vec<&'static str> {
        let mut v: Vec<_> = NAMES.iter().map(|(n, _)| *n).collect();
        v.sort_unstable();
        v
    }

    /// The date form (`2016-10-14` for `newton`).
    pub fn date(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, v)| *v == self)
            .map(|(n, _)| *n)
            .unwrap_or("2013-05-23")
    }

    /// The `conditions` section, resource/output `condition` and
    /// `external_id` exist from 2016-10-14.
    pub fn has_conditions(self) -> bool {
        self >= Version::V2016_10_14
    }

    /// Parameter `tags` exist from 2018-03-02.
    pub fn has_parameter_tags(self) -> bool {
        self >= Version::V2018_03_02
    }

    /// The `modulo` parameter constraint exists from 2017-02-24.
    pub fn has_modulo(self) -> bool {
        self >= Version::V2017_02_24
    }

    /// Lower-case deletion policies (`delete`, `retain`, `snapshot`) from 2016-10-14.
    pub fn has_lowercase_deletion_policies(self) -> bool {
        self >= Version::V2016_10_14
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.date())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_release_names() {
        assert_eq!(Version::parse("2013-05-23"), Some(Version::V2013_05_23));
        assert_eq!(Version::parse("wallaby"), Some(Version::V2021_04_16));
        assert_eq!(Version::parse("newton"), Some(Version::V2016_10_14));
        assert_eq!(Version::parse("2016-10-15"), None);
        assert_eq!(Version::parse("xena"), None);
        assert_eq!(Version::V2017_09_01.date(), "2017-09-01");
        let names = Version::accepted_names();
        assert_eq!(names.first(), Some(&"2013-05-23"));
        assert_eq!(names.last(), Some(&"wallaby"));
        assert_eq!(names.len(), 17);
    }
}
