//! Applications and their packages (ApplicationSummary), as the account's application
//! packages are shown by Applications List and Get. Packages are added by the account's
//! administrator (`openbatch app add`); the package files live in the data directory
//! (`applications/<id>/<version>.zip`).

use serde::{Deserialize, Serialize};

/// An application: its id, display name, the versions it has packages for (sorted) and the
/// version a reference without one means.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub versions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_version: Option<String>,
}

impl Application {
    /// The version a package reference names: its own, or the default one.
    pub fn resolve(&self, version: Option<&str>) -> Option<String> {
        match version {
            Some(v) => self.versions.iter().find(|x| x.eq_ignore_ascii_case(v)).cloned(),
            None => self.default_version.clone(),
        }
    }

    /// Adds a version (kept sorted), optionally making it the default.
    pub fn add_version(&mut self, version: &str, make_default: bool) {
        if !self.versions.iter().any(|v| v.eq_ignore_ascii_case(version)) {
            self.versions.push(version.to_string());
            self.versions.sort();
        }
        if make_default {
            self.default_version = Some(version.to_string());
        }
    }
}

/// The file name a package version is stored under: the version with every character other
/// than letters, digits, `.`, `-` and `_` replaced (versions are free text in Batch).
pub fn package_file_name(version: &str) -> String {
    let safe: String = version.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect();
    format!("{}-{:08x}.zip", safe.trim_start_matches('.'), fnv(version))
}

fn fnv(s: &str) -> u32 {
    s.bytes().fold(0x811c9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x01000193))
}

/// The environment variable Batch sets on Linux nodes for a package: `AZ_BATCH_APP_PACKAGE_`
/// and the application id (case kept), then `_<version>` unless it is the default version's
/// variable; `.`, `-` and `#` become `_`.
pub fn package_env_name(app_id: &str, version: Option<&str>) -> String {
    let flat = |s: &str| s.replace(['.', '-', '#'], "_");
    match version {
        Some(v) => format!("AZ_BATCH_APP_PACKAGE_{}_{}", flat(app_id), flat(v)),
        None => format!("AZ_BATCH_APP_PACKAGE_{}", flat(app_id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_names() {
        let mut a = Application { id: "blender".into(), display_name: None, versions: vec![], default_version: None };
        a.add_version("2.7", false);
        a.add_version("1.0", true);
        assert_eq!(a.versions, ["1.0", "2.7"]);
        assert_eq!(a.resolve(None).as_deref(), Some("1.0"));
        assert_eq!(a.resolve(Some("2.7")).as_deref(), Some("2.7"));
        assert_eq!(a.resolve(Some("3")), None);
        assert_eq!(package_env_name("blender", Some("2.7")), "AZ_BATCH_APP_PACKAGE_blender_2_7");
        assert_eq!(package_env_name("my-app", None), "AZ_BATCH_APP_PACKAGE_my_app");
        assert!(
            package_file_name("../x").starts_with("_x-") || package_file_name("../x").starts_with("__x-"),
            "{}",
            package_file_name("../x")
        );
        assert!(!package_file_name("a/b").contains('/'));
    }
}
