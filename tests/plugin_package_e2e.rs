//! The signed Helm 4 plugin: `scripts/package-plugin.sh` packages examples/helm-plugin with a
//! throwaway GnuPG key made here, and real Helm 4 `helm plugin install` (which verifies
//! tarballs by default) accepts it with the matching public keyring, refuses a tampered
//! tarball, a missing `.prov` and a key it does not know; the installed plugin then works as
//! `--post-renderer ess-guard`. Also the trap new users hit: a plugin installed from a folder is
//! linked under HELM_DATA_HOME/plugins, so a HELM_PLUGINS set elsewhere hides it.
//!
//! Needs ESS_GUARD_HELM4 and `gpg`; without them a test prints `skipped: …` and passes, unless
//! ESS_GUARD_REQUIRE_ALL=1 (.ci/run installs gpg).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::HelmSandbox;

/// `gpg` on PATH, or `None` after `skipped: …` (a panic under ESS_GUARD_REQUIRE_ALL=1).
fn gpg() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("gpg"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            !support::require_all(),
            "gpg is not on PATH and ESS_GUARD_REQUIRE_ALL=1 forbids skipping (apt-get install gpg)"
        );
        println!("skipped: gpg is not on PATH");
    }
    found
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Keys {
    secring: PathBuf,
    pubring: PathBuf,
    other_pubring: PathBuf,
}

/// A throwaway signing key (no passphrase) and a second, unrelated one, exported in the old
/// keyring format Helm reads.
fn make_keys(gpg: &Path, dir: &Path) -> Keys {
    let gen = |home: &Path, uid: &str| {
        std::fs::create_dir_all(home).expect("gnupg home");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        }
        ok(
            Command::new(gpg)
                .env("GNUPGHOME", home)
                .args(["--batch", "--quiet", "--pinentry-mode", "loopback"])
                .args([
                    "--passphrase",
                    "",
                    "--quick-gen-key",
                    uid,
                    "rsa2048",
                    "sign",
                    "1d",
                ])
                .output()
                .expect("run gpg"),
            "gpg --quick-gen-key",
        );
    };
    let export = |home: &Path, what: &str, to: &Path| {
        let out = Command::new(gpg)
            .env("GNUPGHOME", home)
            .args(["--batch", what])
            .output()
            .expect("run gpg");
        let _ = ok(out.clone(), what);
        std::fs::write(to, &out.stdout).expect("write keyring");
    };
    let home = dir.join("gnupg");
    gen(&home, "ess-guard test <test@ess-guard.invalid>");
    let keys = Keys {
        secring: dir.join("secring.gpg"),
        pubring: dir.join("pubring.gpg"),
        other_pubring: dir.join("other.gpg"),
    };
    export(&home, "--export-secret-keys", &keys.secring);
    export(&home, "--export", &keys.pubring);
    let other = dir.join("gnupg-other");
    gen(&other, "someone else <else@ess-guard.invalid>");
    export(&other, "--export", &keys.other_pubring);
    keys
}

/// Helm 4 in `sandbox`, with `plugins` as HELM_PLUGINS and no default GnuPG keyring (only the
/// `--keyring` a test names can verify anything).
fn helm(helm4: &Path, sandbox: &HelmSandbox, plugins: &Path, args: &[&str]) -> Output {
    support::output(
        sandbox
            .helm4(helm4)
            .args(args)
            .env("HELM_PLUGINS", plugins)
            .env("GNUPGHOME", sandbox.path("no-default-keyring"))
            .env("ESS_GUARD_NO_TTY", "1"),
    )
}

/// `helm plugin install TARBALL --keyring KEYRING` into the sandbox's data folder (Helm 4
/// verifies a tarball against its `.prov` by default).
fn install(helm4: &Path, sandbox: &HelmSandbox, tarball: &Path, keyring: &Path) -> Output {
    helm(
        helm4,
        sandbox,
        &sandbox.plugins(),
        &[
            "plugin",
            "install",
            tarball.to_str().expect("UTF-8"),
            "--keyring",
            keyring.to_str().expect("UTF-8"),
        ],
    )
}

/// `helm template` of the mini chart through the installed plugin, marker stated.
fn template_through_plugin(helm4: &Path, sandbox: &HelmSandbox, plugins: &Path) -> Output {
    let chart = support::repo_root().join("fixtures/charts/mini-stack");
    let values = support::repo_root().join("fixtures/charts/values/step2.yaml");
    helm(
        helm4,
        sandbox,
        plugins,
        &[
            "template",
            "ess",
            chart.to_str().expect("UTF-8"),
            "-n",
            "ess",
            "-f",
            values.to_str().expect("UTF-8"),
            "--post-renderer",
            "ess-guard",
            "--post-renderer-args=--state=legacy_auth",
            "--post-renderer-args=--release=ess",
        ],
    )
}

#[test]
fn signed_plugin_installs_verified_and_tampering_is_refused() {
    let Some(helm4) = support::helm4() else {
        return;
    };
    let Some(gpg) = gpg() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = make_keys(&gpg, dir.path());

    // Package and sign.
    let dist = dir.path().join("dist");
    let out = ok(
        Command::new(support::repo_root().join("scripts/package-plugin.sh"))
            .args(["--key", "ess-guard test", "--keyring"])
            .arg(&keys.secring)
            .arg("--out")
            .arg(&dist)
            .arg("--helm")
            .arg(&helm4)
            .output()
            .expect("run package-plugin.sh"),
        "package-plugin.sh",
    );
    let lines: Vec<&str> = out.lines().collect();
    let tarball = PathBuf::from(lines[lines.len() - 2]);
    let prov = PathBuf::from(lines[lines.len() - 1]);
    assert!(tarball.ends_with("ess-guard-0.1.0.tgz"), "{out}");
    assert!(prov.is_file(), "{out}");
    let prov_text = std::fs::read_to_string(&prov).expect("prov");
    assert!(prov_text.starts_with("-----BEGIN PGP SIGNED MESSAGE-----"));
    assert!(prov_text.contains("ess-guard-0.1.0.tgz: sha256:"));

    // Verified install with the public keyring: accepted, listed as signed, and it works.
    let verified = HelmSandbox::new();
    let installed = install(&helm4, &verified, &tarball, &keys.pubring);
    let text = ok(installed, "helm plugin install (signed)");
    assert!(text.contains("Plugin Hash Verified"), "{text}");
    let list = ok(
        helm(&helm4, &verified, &verified.plugins(), &["plugin", "list"]),
        "plugin list",
    );
    let row = list
        .lines()
        .find(|l| l.starts_with("ess-guard"))
        .unwrap_or_else(|| panic!("not listed: {list}"));
    assert!(
        row.contains("postrenderer/v1") && row.contains("signed"),
        "{row}"
    );
    let run = template_through_plugin(&helm4, &verified, &verified.plugins());
    let rendered = ok(run, "helm template through the installed plugin");
    assert!(
        rendered.contains("ess-guard.element.io/restore-replicas"),
        "the plugin ran ess-guard"
    );

    // A tarball changed after signing (same name, the original .prov): refused.
    let tampered_dir = dir.path().join("tampered");
    std::fs::create_dir_all(tampered_dir.join("x")).expect("dir");
    ok(
        Command::new("tar")
            .arg("xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(tampered_dir.join("x"))
            .output()
            .expect("tar"),
        "untar",
    );
    let manifest = tampered_dir.join("x/ess-guard/plugin.yaml");
    let original = std::fs::read_to_string(&manifest).expect("plugin.yaml");
    std::fs::write(
        &manifest,
        original.replace("command: ess-guard", "command: /tmp/evil"),
    )
    .expect("tamper");
    let tampered = tampered_dir.join("ess-guard-0.1.0.tgz");
    ok(
        Command::new("tar")
            .arg("czf")
            .arg(&tampered)
            .arg("-C")
            .arg(tampered_dir.join("x"))
            .arg("ess-guard")
            .output()
            .expect("tar"),
        "tar",
    );
    std::fs::copy(&prov, tampered_dir.join("ess-guard-0.1.0.tgz.prov")).expect("copy prov");
    let refusing = HelmSandbox::new();
    let plugins2 = refusing.plugins();
    let refused = install(&helm4, &refusing, &tampered, &keys.pubring);
    assert!(!refused.status.success(), "tampered tarball installed");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("verification failed"), "{err}");
    assert!(!plugins2.join("ess-guard").exists(), "nothing installed");

    // No .prov next to the tarball: refused.
    let bare_dir = dir.path().join("bare");
    std::fs::create_dir_all(&bare_dir).expect("dir");
    let bare = bare_dir.join("ess-guard-0.1.0.tgz");
    std::fs::copy(&tarball, &bare).expect("copy");
    let refused = install(&helm4, &refusing, &bare, &keys.pubring);
    assert!(!refused.status.success(), "unsigned tarball installed");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("no provenance file"), "{err}");

    // Signed by a key the keyring does not hold: refused.
    let refused = install(&helm4, &refusing, &tarball, &keys.other_pubring);
    assert!(!refused.status.success(), "unknown signer accepted");
    assert!(!plugins2.join("ess-guard").exists(), "nothing installed");
}

#[test]
fn a_folder_install_is_hidden_by_helm_plugins_set_elsewhere() {
    let Some(helm4) = support::helm4() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = HelmSandbox::new();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("dir");
    let folder = support::repo_root().join("examples/helm-plugin");
    let out = helm(
        &helm4,
        &sandbox,
        &elsewhere,
        &["plugin", "install", folder.to_str().expect("UTF-8")],
    );
    ok(out, "helm plugin install <folder>");
    // Linked under HELM_DATA_HOME/plugins, not HELM_PLUGINS …
    let link = sandbox.plugins().join("helm-plugin");
    assert!(
        std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()),
        "{} is not a link to the folder",
        link.display()
    );
    assert!(std::fs::read_dir(&elsewhere).expect("dir").next().is_none());
    // … so with HELM_PLUGINS elsewhere, Helm cannot find it.
    let run = template_through_plugin(&helm4, &sandbox, &elsewhere);
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("not found"), "{err}");
    // With HELM_PLUGINS at the data folder, it is found.
    let run = template_through_plugin(&helm4, &sandbox, &sandbox.plugins());
    ok(
        run,
        "helm template with HELM_PLUGINS=HELM_DATA_HOME/plugins",
    );
}
