//! Named initiator profiles: the settings people are told to use, shipped
//! as iscsid.conf files in `profiles/` (each cites its source) and built
//! into the binary. A scenario names one with `[initiator] profile = "…"`;
//! `--iscsid-conf profiles/<name>.conf` applies one to every scenario.

/// Name -> iscsid.conf text.
pub const PROFILES: &[(&str, &str)] = &[
    (
        "open-iscsi-defaults",
        include_str!("../../../profiles/open-iscsi-defaults.conf"),
    ),
    (
        "multipath",
        include_str!("../../../profiles/multipath.conf"),
    ),
    (
        "root-on-iscsi",
        include_str!("../../../profiles/root-on-iscsi.conf"),
    ),
    (
        "cloud-image-6000",
        include_str!("../../../profiles/cloud-image-6000.conf"),
    ),
];

/// The iscsid.conf text of profile `name`.
pub fn profile(name: &str) -> Option<&'static str> {
    PROFILES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Every profile's name, for messages.
pub fn names() -> Vec<&'static str> {
    PROFILES.iter().map(|(n, _)| *n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_profiles_is_built_in_under_its_name() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../profiles");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.ok()?.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".conf").map(str::to_string)
            })
            .collect();
        on_disk.sort();
        let mut built_in: Vec<String> = names().into_iter().map(String::from).collect();
        built_in.sort();
        assert_eq!(on_disk, built_in);
        assert!(profile("root-on-iscsi")
            .unwrap()
            .contains("replacement_timeout = 86400"));
        assert_eq!(profile("nope"), None);
    }
}
