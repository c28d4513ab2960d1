//! The fuzz harnesses, shared by the cargo-fuzz targets (`fuzz_targets/*.rs`) and the regression
//! test that replays `fuzz/regressions/<target>/*` on every `cargo test`
//! (`tests/fuzz_regressions.rs`). Each function must never panic on any input; the assertions
//! are the invariants the tool relies on.

// Each fuzz target uses one of the functions.
#![allow(dead_code)]

use ess_guard::engine::{self, FailOn, Verdict};
use ess_guard::inject;
use ess_guard::manifest::{yaml, Body, ParseMode, Stream};
use ess_guard::render;
use ess_guard::source::Observed;
use ess_guard::state::MarkerState;
use ess_guard::values::merge::HelmVersion;
use ess_guard::values::strvals::{self, SetKind};
use serde_json::{json, Value};

/// Hardening with every edit enabled (the retry count too), so the fuzzers reach each one.
fn guard_args(no_harden: bool) -> inject::Options {
    inject::Options {
        no_harden,
        scale_down_retries: Some(300),
    }
}

/// Bytes → `Stream::parse` in both modes → facts → for every stored marker: evaluate, and when
/// allowed, plan and apply the post-render edits.
pub fn stream(data: &[u8]) {
    let full = Stream::parse("fuzz", data.to_vec(), ParseMode::Full);
    let relevant = Stream::parse("fuzz", data.to_vec(), ParseMode::Relevant);
    if full.is_ok() {
        // Relevant parses a subset of what Full parses.
        assert!(
            relevant.is_ok(),
            "Full parsed but Relevant failed: {:?}",
            relevant.err()
        );
    }
    // Conversely, every document Relevant mode read into the model (fast readers included) is
    // one the full parser reads too; only documents it passed through unread (`Opaque`) may be
    // ones Full refuses. Otherwise `check` (Full) and `post-render` (Relevant) would judge the
    // same document differently.
    if let Ok(stream) = &relevant {
        for doc in &stream.docs {
            if matches!(doc.body, Body::Resource(_) | Body::List(_)) {
                if let Err(e) = yaml::parse_document(stream.body_text(doc)) {
                    panic!(
                        "Relevant read document {} that the full parser refuses: {e}",
                        doc.index
                    );
                }
            }
        }
    }
    let mut facts_by_mode = Vec::new();
    // What each mode decides and writes, per stored marker and hardening: must be identical.
    let mut outcomes_by_mode: Vec<Vec<String>> = Vec::new();
    for parsed in [full, relevant] {
        let mut outcomes = Vec::new();
        // Full refusing a stream that Relevant reads is by design (Relevant passes unrelated
        // documents through unread, checked above); every later step must agree between modes.
        let Ok(stream) = parsed else { continue };
        // The documents cover the input exactly, in order.
        let joined: String = stream.docs.iter().map(|d| stream.raw(d)).collect();
        assert_eq!(joined.as_bytes(), data, "documents do not cover the input");
        for (i, doc) in stream.docs.iter().enumerate() {
            assert_eq!(doc.index, i);
            // Messages are one line.
            assert!(!doc.label().contains('\n'));
        }
        // A mode that cannot model the stream is an outcome to compare, not a case to skip:
        // post-render (Relevant) failing where check (Full) succeeds, or the reverse, is a
        // disagreement between the two commands.
        let facts = match render::facts_from_stream(&stream) {
            Ok(facts) => facts,
            Err(e) => {
                facts_by_mode.push(Err(e.to_string()));
                outcomes_by_mode.push(outcomes);
                continue;
            }
        };
        let mut comparable = facts.clone();
        comparable.notes.clear();
        facts_by_mode.push(Ok(comparable));
        for state in MarkerState::ALL {
            let observed = Observed::stated(state, "fuzz");
            let Ok(evaluation) = engine::evaluate(&observed, &facts, None, FailOn::Error) else {
                outcomes.push(format!("{state:?}: evaluation error"));
                continue;
            };
            outcomes.push(format!("{state:?}: {:?}", evaluation.verdict));
            if evaluation.verdict != Verdict::Allowed {
                continue;
            }
            for no_harden in [false, true] {
                let Ok(plan) = inject::plan(&stream, &facts, &evaluation, &guard_args(no_harden))
                else {
                    outcomes.push(format!("{state:?}/{no_harden}: plan error"));
                    continue;
                };
                let Ok(output) = inject::apply(&stream, &plan) else {
                    outcomes.push(format!("{state:?}/{no_harden}: apply error"));
                    continue;
                };
                outcomes.push(format!("{state:?}/{no_harden}: {output}"));
                let _ = inject::explain(&stream, &plan, 3);
                if plan.is_empty() {
                    assert_eq!(output.as_bytes(), data, "an empty plan changed the output");
                    continue;
                }
                // What ess-guard writes must read back: same documents first, each still valid.
                let reread =
                    Stream::parse("fuzz-output", output.clone().into_bytes(), ParseMode::Full);
                if let Ok(original_full) = Stream::parse("fuzz", data.to_vec(), ParseMode::Full) {
                    let reread = reread.unwrap_or_else(|e| {
                        panic!("post-render output does not parse: {e}\n{output}")
                    });
                    assert!(reread.docs.len() >= original_full.docs.len());
                }
            }
        }
        outcomes_by_mode.push(outcomes);
    }
    if let [a, b] = facts_by_mode.as_slice() {
        assert_eq!(a, b, "Full and Relevant parsing read different facts");
    }
    if let [a, b] = outcomes_by_mode.as_slice() {
        assert_eq!(
            a, b,
            "Full and Relevant parsing decided or wrote differently"
        );
    }
}

/// Bytes → one `--set`-style argument for every flavour and Helm version, on an empty and a
/// pre-filled values map, and as `--set-file`.
pub fn set(data: &[u8]) {
    let expr = String::from_utf8_lossy(data);
    let starts = [
        Value::Null,
        json!({"a": {"b": [1, {"c": "d"}]}, "list": [null, 2], "s": "x"}),
    ];
    for version in [HelmVersion::V3, HelmVersion::V4] {
        for kind in [
            SetKind::Auto,
            SetKind::String,
            SetKind::Json,
            SetKind::Literal,
        ] {
            for start in &starts {
                let mut values = start.clone();
                if strvals::apply_set_for(version, &mut values, &expr, kind).is_ok() {
                    assert!(
                        values.is_object() || values.is_null(),
                        "{kind:?} {expr:?} gave {values}"
                    );
                    // Whatever was built can be written (no NaN, no cycles).
                    let _ = serde_json::to_string(&values).unwrap_or_else(|e| panic!("{e}"));
                }
            }
        }
        let mut values = Value::Null;
        let mut read = |path: &str| -> Result<String, String> {
            if path.len().is_multiple_of(2) {
                Ok(format!("content of {path}"))
            } else {
                Err("no such file".into())
            }
        };
        let _ = strvals::apply_set_file_for(version, &mut values, &expr, &mut read);
    }
}

/// Bytes (as UTF-8, else ignored) → the three fast readers of `ParseMode::Relevant` against
/// libyaml, which is the reference: each may decline (`None`) anything, but whatever it accepts
/// must read exactly as libyaml reads it. This is what makes the fast path safe to trust, so it
/// is fuzzed on its own rather than only through `stream`, where most inputs never reach it.
pub fn subset(data: &[u8]) {
    use ess_guard::manifest::{simple, skeleton, validate, yaml};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let full = yaml::parse_document(text);
    // The simple reader: same value, same repeated keys.
    if let Some(fast) = simple::parse(text) {
        let reference = full
            .as_ref()
            .unwrap_or_else(|e| panic!("simple::parse accepted what libyaml refuses ({e})"));
        assert_eq!(
            fast.value, reference.value,
            "simple::parse read another value"
        );
        assert_eq!(
            fast.duplicate_keys, reference.duplicate_keys,
            "simple::parse reported other repeated keys"
        );
    }
    // The line checker: valid only if libyaml says so, with the same repeated keys.
    if let Some(dups) = validate::document(text) {
        let reference = full
            .as_ref()
            .unwrap_or_else(|e| panic!("validate::document accepted what libyaml refuses ({e})"));
        assert_eq!(
            dups, reference.duplicate_keys,
            "validate::document reported other repeated keys"
        );
    }
    // The skeleton: on a document the line checker accepts (the only documents
    // `ParseMode::Relevant` reads by their skeleton), the skeleton reads the same identity,
    // metadata and replicas as the whole document (what the guard takes from it).
    let checked = validate::document(text).is_some();
    if let (true, Some(cut), Ok(reference)) = (checked, skeleton::skeleton(text), full.as_ref()) {
        let part = yaml::parse_document(&cut.text(text))
            .unwrap_or_else(|e| panic!("the skeleton of a valid document does not parse ({e})"));
        for key in ["apiVersion", "kind", "metadata"] {
            assert_eq!(
                part.value.get(key),
                reference.value.get(key),
                "the skeleton reads another {key}"
            );
        }
        let replicas = |v: &Value| v.get("spec").and_then(|s| s.get("replicas")).cloned();
        assert_eq!(
            replicas(&part.value),
            replicas(&reference.value),
            "the skeleton reads other spec.replicas"
        );
        if let Some(parts) = simple::parse_parts(&cut.parts(text)) {
            assert_eq!(
                parts.value, part.value,
                "parse_parts differs from the joined text"
            );
        }
    }
}
