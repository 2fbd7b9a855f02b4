use std::time::{Duration, SystemTime};

use sprijin_proto::catalog::{self, Catalog, CatalogFile, Platform, SignedCatalog, SigningKey};
use sprijin_proto::message::diag::{Finding, Severity};

use super::catalog as kept;
use super::*;

const CACHE: &str = r#"id = "clear-my-cache"
title = "Delete old files from your cache"
description = "Deletes old files in your cache."
risk = "low"
self_service = true
platforms = ["linux"]
timeout_secs = 60
program = "find"
args = ["{dir}", "-type", "f", "-mtime", "+{days}", "-delete"]

[params.dir]
from = "finding"
pattern = '^(/[A-Za-z0-9_][A-Za-z0-9._-]*)+/\.cache$'

[params.days]
choices = ["7", "30"]
"#;

const TECHNICIAN_ONLY: &str = r#"id = "journal-vacuum"
title = "Trim the journal"
description = "Trims the journal."
risk = "low"
platforms = ["linux"]
timeout_secs = 60
program = "journalctl"
args = ["--vacuum-size=100M"]
"#;

fn verified(files: &[(&str, &str)]) -> Catalog {
    let key = SigningKey::from_bytes(&[7; 32]);
    let files: Vec<CatalogFile> = files
        .iter()
        .map(|(name, contents)| CatalogFile {
            name: (*name).into(),
            contents: (*contents).into(),
        })
        .collect();
    let now = SystemTime::now();
    let signature = catalog::sign(&files, &key, now, now + Duration::from_secs(3600)).unwrap();
    catalog::verify(
        &SignedCatalog { files, signature },
        &[key.verifying_key()],
        now,
    )
    .unwrap()
}

fn finding(script: &str, params: &[(&str, &str)]) -> Finding {
    Finding {
        id: "disk-nearly-full".into(),
        severity: Severity::Critical,
        title: "Disk /home is 95% full".into(),
        evidence: Vec::new(),
        subject: Some("/home".into()),
        script: Some(script.into()),
        params: params
            .iter()
            .map(|(n, v)| ((*n).into(), (*v).into()))
            .collect(),
    }
}

fn catalog() -> Catalog {
    verified(&[
        ("clear-my-cache.toml", CACHE),
        ("journal-vacuum.toml", TECHNICIAN_ONLY),
    ])
}

#[test]
fn a_self_service_script_is_offered_with_the_findings_value_and_the_first_choice() {
    let items = offers(
        vec![finding("clear-my-cache", &[("dir", "/home/ana/.cache")])],
        Some(&catalog()),
        Platform::Linux,
    );
    let offer = items[0].offer.as_ref().expect("offered");
    assert_eq!(offer.script.id.as_str(), "clear-my-cache");
    assert_eq!(
        offer.args,
        ["/home/ana/.cache", "-type", "f", "-mtime", "+7", "-delete"]
    );
    assert_eq!(offer.catalog_digest, catalog().digest);
}

#[test]
fn no_offer_without_the_flag_a_value_a_match_the_platform_or_a_catalog() {
    let catalog = catalog();
    let offered =
        |f: Finding, platform| offers(vec![f], Some(&catalog), platform)[0].offer.is_some();
    assert!(!offered(finding("journal-vacuum", &[]), Platform::Linux));
    assert!(!offered(finding("clear-my-cache", &[]), Platform::Linux));
    assert!(!offered(
        finding("clear-my-cache", &[("dir", "/etc/../root/.cache")]),
        Platform::Linux
    ));
    assert!(!offered(
        finding("clear-my-cache", &[("dir", "/home/ana/.cache")]),
        Platform::Windows
    ));
    assert!(!offered(
        finding("not-in-the-catalog", &[]),
        Platform::Linux
    ));
    let items = offers(
        vec![finding("clear-my-cache", &[("dir", "/home/ana/.cache")])],
        None,
        Platform::Linux,
    );
    assert!(items[0].offer.is_none());
}

#[test]
fn a_finding_may_pick_one_of_the_choices_but_not_another_value() {
    let catalog = catalog();
    let args = |days: &str| {
        offers(
            vec![finding(
                "clear-my-cache",
                &[("dir", "/home/ana/.cache"), ("days", days)],
            )],
            Some(&catalog),
            Platform::Linux,
        )[0]
        .offer
        .as_ref()
        .map(|o| o.args[4].clone())
    };
    assert_eq!(args("30").as_deref(), Some("+30"));
    assert_eq!(args("1"), None);
}

#[test]
fn the_kept_catalog_is_verified_again_and_a_tampered_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::from_bytes(&[7; 32]);
    let files = vec![CatalogFile {
        name: "clear-my-cache.toml".into(),
        contents: CACHE.into(),
    }];
    let now = SystemTime::now();
    let signature = catalog::sign(&files, &key, now, now + Duration::from_secs(3600)).unwrap();
    let mut signed = SignedCatalog { files, signature };
    let config = crate::config::AgentConfig::resolve(
        crate::config::ShareFlags {
            data_dir: Some(dir.path().to_owned()),
            output_cap: 1024,
            ..Default::default()
        },
        crate::config::ConfigFile::default(),
    )
    .unwrap();
    let mut help = SelfHelp {
        config,
        catalog: None,
        watch: Duration::ZERO,
    };
    // No catalog yet: none, and no error.
    assert!(kept::load(&help).unwrap().is_none());
    // Kept, but no key trusted: refused.
    kept::keep(&signed, &kept::kept_path(&help.config)).unwrap();
    assert!(matches!(
        kept::load(&help),
        Err(kept::CatalogSourceError::NoTrustedKey)
    ));
    help.config.trusted_keys = vec![key.verifying_key()];
    assert_eq!(kept::load(&help).unwrap().unwrap().len(), 1);
    // The flag turned off after signing, or on: the signature no longer holds.
    signed.files[0].contents = CACHE.replace("self_service = true\n", "");
    kept::keep(&signed, &kept::kept_path(&help.config)).unwrap();
    let err = kept::load(&help).unwrap_err().to_string();
    assert!(err.starts_with("the repair catalog is refused"), "{err}");
}
