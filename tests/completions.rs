//! `ess-guard completions <shell>` and `ess-guard man`.

use std::process::Command;

fn ess_guard(args: &[&str]) -> (String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_ess-guard"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ess-guard: {e}"));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let (script, code) = ess_guard(&["completions", shell]);
        assert_eq!(code, 0, "{shell}");
        assert!(!script.trim().is_empty(), "{shell}: empty script");
        assert!(
            script.contains("post-render"),
            "{shell}: the post-render command is not completed"
        );
        assert!(
            script.contains("state-map"),
            "{shell}: check's flags are not completed"
        );
    }
    let (_, code) = ess_guard(&["completions", "tcsh"]);
    assert_eq!(code, 2, "an unknown shell is a usage error");
}

#[test]
fn man_page() {
    let (page, code) = ess_guard(&["man"]);
    assert_eq!(code, 0);
    assert!(
        page.starts_with(".TH "),
        "the page starts with .TH: {:?}",
        page.lines().next()
    );
    // roff escapes hyphens: `--state` is written `\-\-state`.
    assert!(
        page.contains(r"\fB\-\-state\fR \fI<STATE>\fR"),
        "--state is documented with its value"
    );
    assert!(
        page.contains(r"\-\-state\-map"),
        "--state-map is documented"
    );
    for section in ["ESS-GUARD CHECK", "ESS-GUARD POST-RENDER"] {
        assert!(
            page.contains(&format!(".SH \"{section}\"")),
            "{section} section"
        );
    }
    // The string definitions appear once, after the title.
    assert_eq!(page.matches(".ds Aq").count(), 2, "one .ie/.el pair");
}
