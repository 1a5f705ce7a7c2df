use super::*;
use crate::mock::scenario::SkuSpec;

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[test]
fn content_as_of_picks_latest_at_or_before() {
    let h = vec![
        (t("2026-01-01T00:00:00Z"), "a".to_string()),
        (t("2026-01-10T00:00:00Z"), "b".to_string()),
        (t("2026-01-20T00:00:00Z"), "c".to_string()),
    ];
    assert_eq!(content_as_of(&h, t("2025-12-31T00:00:00Z")), "");
    assert_eq!(content_as_of(&h, t("2026-01-01T00:00:00Z")), "a");
    assert_eq!(content_as_of(&h, t("2026-01-09T23:59:59Z")), "a");
    assert_eq!(content_as_of(&h, t("2026-01-10T00:00:00Z")), "b");
    assert_eq!(content_as_of(&h, t("2027-01-01T00:00:00Z")), "c");
}

#[test]
fn sku_inference() {
    let s = complete_sku(SkuSpec {
        name: "BC_Gen5".into(),
        ..Default::default()
    });
    assert_eq!(s.tier.as_deref(), Some("BusinessCritical"));
    assert_eq!(s.family.as_deref(), Some("Gen5"));
    let s = complete_sku(SkuSpec {
        name: "S3".into(),
        ..Default::default()
    });
    assert_eq!(s.tier.as_deref(), Some("Standard"));
    assert_eq!(s.family, None);
}

#[test]
fn defaults_for_dates() {
    let start = t("2026-11-20T12:00:00Z");
    let sc = Scenario::from_toml_str(
        "[[servers]]\nsubscription_id='s'\nresource_group='r'\nname='a'\nlocation='l'\n\
         [[servers.databases]]\nname='x'\n\
         [[servers.databases]]\nname='y'\nearliest_restore='-3d'\ncreated='-2d'\n",
    )
    .unwrap();
    let st = State::new(&sc, start);
    let err = st.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("before created"), "{err}");

    let sc = Scenario::from_toml_str(
        "[[servers]]\nsubscription_id='s'\nresource_group='r'\nname='a'\nlocation='l'\n\
         [[servers.databases]]\nname='x'\n",
    )
    .unwrap();
    let st = State::new(&sc, start).unwrap();
    let db = &st.servers[0].databases[0];
    assert_eq!(db.earliest_restore(start), Some(t("2026-11-13T12:00:00Z")));
    assert_eq!(db.retention_days, 7);
    assert_eq!(db.backup_redundancy, "Geo");
    assert_eq!(db.creation_date, t("2026-10-16T12:00:00Z"));
    assert_eq!(db.sku, default_sku());
}

#[test]
fn retention_moves_the_earliest_restore_date() {
    let start = t("2026-11-20T12:00:00Z");
    let sc = Scenario::from_toml_str(
        "[[servers]]\nsubscription_id='s'\nresource_group='r'\nname='a'\nlocation='l'\n\
         [[servers.databases]]\nname='x'\ncreated='-100d'\nretention_days=10\n\
         [[servers.databases]]\nname='y'\ncreated='-100d'\nearliest_restore='-30d'\n",
    )
    .unwrap();
    let mut st = State::new(&sc, start).unwrap();
    let db = &mut st.servers[0].databases[0];
    assert_eq!(db.earliest_restore(start), Some(t("2026-11-10T12:00:00Z")));
    // Time passes: it moves forward.
    assert_eq!(
        db.earliest_restore(t("2026-11-21T12:00:00Z")),
        Some(t("2026-11-11T12:00:00Z"))
    );
    db.set_retention(2, start);
    assert_eq!(db.earliest_restore(start), Some(t("2026-11-18T12:00:00Z")));
    // Raised again: purged backups stay gone until time catches up.
    db.set_retention(35, start);
    assert_eq!(db.earliest_restore(start), Some(t("2026-11-18T12:00:00Z")));
    assert_eq!(db.retention_days, 35);
    // A fixed date stays until the retention is changed.
    let y = &mut st.servers[0].databases[1];
    assert_eq!(y.earliest_restore(start), Some(t("2026-10-21T12:00:00Z")));
    y.set_retention(7, start);
    assert_eq!(y.earliest_restore(start), Some(t("2026-11-13T12:00:00Z")));
}
