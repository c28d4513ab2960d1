//! `docs/rules.md` is generated from the rule catalogue; this test fails when it is stale.

#[test]
fn rules_md_is_up_to_date() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/rules.md");
    let expected = ess_guard::commands::rules::markdown();
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/rules.md is out of date with the rule catalogue in src/rules.rs; regenerate it with\n\n    cargo run -- rules -o markdown > docs/rules.md\n"
    );
}

#[test]
fn every_rule_is_documented_with_an_example() {
    let doc = ess_guard::commands::rules::markdown();
    for rule in ess_guard::rules::RuleId::ALL {
        let info = rule.info();
        assert!(
            doc.contains(&format!("\n## {}\n", info.id)),
            "{} has no section",
            info.id
        );
        assert!(
            doc.contains(&format!("- **Example:** {}\n", info.example)),
            "{} has no example",
            info.id
        );
    }
}
