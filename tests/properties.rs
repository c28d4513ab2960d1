//! Property tests over the library:
//! - a parsed `Stream` covers its input exactly (the documents' raw texts, concatenated, are the
//!   input bytes);
//! - post-render of an allowed render leaves every document it did not edit byte-identical;
//! - the marker state machine and the engine never allow a transition the chart's table forbids,
//!   checked against a table written out here independently of `state::decide`.

use ess_guard::engine::{self, FailOn, Intent, Verdict};
use ess_guard::facts::{Facts, MasAuth, Origin, Requested};
use ess_guard::guard;
use ess_guard::manifest::{split, ParseMode, Stream};
use ess_guard::request::{GuardRequest, StateRequest};
use ess_guard::source::{FixedState, Observed};
use ess_guard::state::{self, ChartProfile, MarkerState, Step};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Helm-like streams

/// One document of the small grammar: kinds the guard reads and kinds it does not, with or
/// without a `# Source:` comment, in block or flow style, sometimes comment-only.
fn document() -> impl Strategy<Value = String> {
    let name = "[a-z][a-z0-9-]{0,12}";
    let kind = prop_oneof![
        Just("ConfigMap"),
        Just("Service"),
        Just("Secret"),
        Just("Deployment"),
        Just("StatefulSet"),
        Just("Job"),
        Just("ServiceAccount"),
        Just("Ingress"),
    ];
    let value = prop_oneof![
        "[a-zA-Z0-9 ._/-]{0,30}".prop_map(|s| format!("\"{s}\"")),
        "[0-9]{1,5}",
        Just("|\n    line one\n    --- not a separator\n    line three".to_string()),
        Just("[a, b, {c: d}]".to_string()),
        Just("synapse".to_string()),
        Just("matrix-authentication-service".to_string()),
    ];
    (
        proptest::option::of(name.prop_map(|n| format!("# Source: chart/templates/{n}.yaml\n"))),
        kind,
        name,
        proptest::collection::vec(("[a-z]{1,8}", value), 0..4),
        any::<bool>(),
        0..8u8,
    )
        .prop_map(|(source, kind, name, data, flow, shape)| {
            let mut doc = source.unwrap_or_default();
            if shape == 0 {
                doc.push_str("# only a comment\n");
                return doc;
            }
            let api = if matches!(kind, "Deployment" | "StatefulSet") {
                "apps/v1"
            } else {
                "v1"
            };
            if flow {
                doc.push_str(&format!(
                    "{{apiVersion: {api}, kind: {kind}, metadata: {{name: {name}}}}}\n"
                ));
                return doc;
            }
            doc.push_str(&format!(
                "apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {name}\n"
            ));
            if matches!(kind, "Deployment" | "StatefulSet") {
                doc.push_str("spec:\n  replicas: 2\n");
            }
            if !data.is_empty() && !matches!(kind, "Deployment" | "StatefulSet") {
                doc.push_str("data:\n");
                for (k, v) in data {
                    doc.push_str(&format!("  {k}: {v}\n"));
                }
            }
            doc
        })
}

/// How documents are separated: the separator variants Helm and hand-written YAML use.
fn separator() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("---\n"),
        Just("--- \n"),
        Just("---\r\n"),
        Just("--- # c\n")
    ]
}

/// A stream: with or without a leading separator, documents joined by separators.
fn stream() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        proptest::collection::vec((separator(), document()), 1..8),
    )
        .prop_map(|(lead, docs)| {
            let mut out = String::new();
            for (i, (sep, doc)) in docs.into_iter().enumerate() {
                if i > 0 || lead {
                    out.push_str(sep);
                }
                out.push_str(&doc);
            }
            out
        })
}

fn raw_concat(stream: &Stream) -> String {
    stream.docs.iter().map(|d| stream.raw(d)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The documents of a parsed stream are the input, byte for byte, in order.
    #[test]
    fn stream_raw_concatenation_is_the_input(text in stream()) {
        for mode in [ParseMode::Full, ParseMode::Relevant] {
            let parsed = Stream::parse("p", text.clone().into_bytes(), mode);
            let s = parsed.map_err(|e| TestCaseError::fail(format!("{mode:?}: {e}\n{text}")))?;
            prop_assert_eq!(raw_concat(&s), text.clone());
            prop_assert_eq!(s.docs.len(), split::split(text.as_bytes()).len());
        }
    }

    /// The same on arbitrary bytes: when a stream parses at all, it covers the input.
    #[test]
    fn stream_covers_arbitrary_input(bytes in proptest::collection::vec(prop_oneof![
        Just(b'-'), Just(b'\n'), Just(b' '), Just(b'a'), Just(b':'), Just(b'k'), Just(b'#'), any::<u8>()
    ], 0..300)) {
        for mode in [ParseMode::Full, ParseMode::Relevant] {
            if let Ok(s) = Stream::parse("p", bytes.clone(), mode) {
                prop_assert_eq!(raw_concat(&s).into_bytes(), bytes.clone());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Post-render leaves untouched documents alone

fn guard_args() -> GuardRequest {
    GuardRequest {
        helm_version: None,
        scale_down_retries: None,
        no_harden: false,
        full_parse: false,
    }
}

/// The documents of the step-2 example render (a Synapse StatefulSet, the markers Job, the
/// syn2mas Job), each with its separator.
fn step2_documents() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/renders/step2.yaml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    split::split(text.as_bytes())
        .iter()
        .map(|c| text[c.span()].to_string())
        .collect()
}

fn chunks(text: &str) -> Vec<String> {
    split::split(text.as_bytes())
        .iter()
        .map(|c| text[c.span()].to_string())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Filler documents mixed into a real step-2 render (or alone): post-render under a marker
    /// that allows it changes only the documents its plan names; every other document comes out
    /// byte-identical and in place, and added documents only follow them.
    #[test]
    fn post_render_keeps_untouched_documents(
        fillers in proptest::collection::vec((separator(), document()), 0..10),
        positions in proptest::collection::vec(any::<prop::sample::Index>(), 10),
        with_synapse in any::<bool>(),
        state in prop_oneof![Just(MarkerState::Absent), Just(MarkerState::LegacyAuth)],
    ) {
        let mut docs: Vec<String> = if with_synapse { step2_documents() } else { Vec::new() };
        for (i, (sep, doc)) in fillers.into_iter().enumerate() {
            let at = positions[i].index(docs.len() + 1);
            docs.insert(at, format!("{sep}{doc}"));
        }
        let input: String = docs.concat();
        if input.trim().is_empty() {
            return Ok(());
        }
        let source = FixedState(state);
        let guarded = match guard::run("p", input.clone().into_bytes(), &source, &StateRequest::default(), None, &guard_args(), FailOn::Error) {
            Ok(g) => g,
            // A stream of comment-only fillers is an empty release: refused, never echoed.
            Err(e) => {
                prop_assert!(e.to_string().contains("no Kubernetes object"), "{e}");
                return Ok(());
            }
        };
        let Some(output) = guarded.output.as_ref().map(|o| o.to_string(&guarded.stream)) else { return Ok(()) };
        let edited: Vec<usize> = guarded.plan.edits.iter().map(|(i, _)| *i).collect();
        let before = chunks(&input);
        let after = chunks(&output);
        prop_assert_eq!(after.len(), before.len() + guarded.plan.added.len());
        for (i, original) in before.iter().enumerate() {
            if !edited.contains(&i) {
                prop_assert_eq!(&after[i], original, "document {} changed", i);
            }
        }
        if with_synapse {
            // The step-2 render is the migration: ess-guard must have annotated Synapse.
            prop_assert!(!edited.is_empty(), "no edits on a step-2 render");
        } else {
            prop_assert_eq!(output, input);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The state machine

/// The chart's transition table (`ess-chart.md` §1.3/§1.4), written out independently: may
/// `step` follow the stored marker `current`?
fn table_allows(current: MarkerState, step: Step) -> bool {
    use MarkerState::*;
    use Step::*;
    const ALLOWED: &[(MarkerState, Step)] = &[
        // No marker: a fresh install or a deployment from before markers; anything goes.
        (Absent, Legacy),
        (Absent, DryRun),
        (Absent, Migrate),
        (Absent, Finalize),
        // legacy_auth ← {legacy_auth}: Synapse only, the dry run, and the migration.
        (LegacyAuth, Legacy),
        (LegacyAuth, DryRun),
        (LegacyAuth, Migrate),
        // delegated_auth ← {delegated_auth, syn2mas_migrated}.
        (Syn2masMigrated, Finalize),
        (DelegatedAuth, Finalize),
    ];
    ALLOWED.contains(&(current, step))
}

#[test]
fn decide_matches_the_table_for_every_pair() {
    for current in MarkerState::ALL {
        for step in Step::ALL {
            assert_eq!(
                state::decide(current, step, ChartProfile::OneUpgradeStage2).is_ok(),
                table_allows(current, step),
                "decide({current}, {step})"
            );
        }
        let allowed: Vec<Step> = Step::ALL
            .into_iter()
            .filter(|s| table_allows(current, *s))
            .collect();
        assert_eq!(
            state::allowed_steps(current, ChartProfile::OneUpgradeStage2),
            allowed,
            "allowed_steps({current})"
        );
        if let Some(next) = state::next_step(current) {
            assert!(
                table_allows(current, next),
                "next_step({current}) = {next} is forbidden"
            );
        }
    }
}

fn marker_state() -> impl Strategy<Value = MarkerState> {
    prop::sample::select(MarkerState::ALL.to_vec())
}

fn step() -> impl Strategy<Value = Step> {
    prop::sample::select(Step::ALL.to_vec())
}

fn requested() -> impl Strategy<Value = Requested> {
    prop_oneof![
        step().prop_map(Requested::Step),
        proptest::collection::vec(step(), 1..4).prop_map(Requested::Ambiguous),
        Just(Requested::Ambiguous(vec![Step::Migrate, Step::Finalize])),
        Just(Requested::NoMarker),
    ]
}

fn facts() -> impl Strategy<Value = Facts> {
    (
        requested(),
        (
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(any::<bool>()),
        ),
        (
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>()),
        ),
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
        proptest::option::of((any::<bool>(), any::<bool>(), any::<bool>())),
        proptest::collection::vec((any::<bool>(), "[a-z]{1,6}"), 0..3),
    )
        .prop_map(
            |(
                requested,
                (synapse, mas, syn2mas),
                (check_config, markers),
                (saml, cas, jwt, sso_worker),
                mas_auth,
                idps,
            )| {
                let mut f = Facts::new(Origin::Render);
                f.requested = requested;
                f.synapse_enabled = synapse;
                f.mas_enabled = mas;
                f.syn2mas = syn2mas;
                f.check_config_hook = check_config;
                f.markers_enabled = markers;
                f.sso_login_worker = sso_worker;
                f.synapse_auth.saml = saml;
                f.synapse_auth.cas = cas;
                f.synapse_auth.jwt = jwt;
                f.synapse_auth.oidc_idps = idps
                    .iter()
                    .filter(|(oidc, _)| *oidc)
                    .map(|(_, n)| format!("oidc-{n}"))
                    .collect();
                f.synapse_auth.password_providers = idps
                    .iter()
                    .filter(|(oidc, _)| !*oidc)
                    .map(|(_, n)| n.clone())
                    .collect();
                f.mas_auth = mas_auth.map(|(bcrypt_v1, partial, read_only)| MasAuth {
                    bcrypt_v1,
                    partial,
                    matrix_kind: read_only.then(|| "synapse_read_only".to_string()),
                    synapse_idp_ids: idps
                        .iter()
                        .filter(|(oidc, _)| *oidc)
                        .map(|(_, n)| n.clone())
                        .collect(),
                });
                f.synapse_statefulsets = vec![("ess-synapse-main".into(), 1)];
                f
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// Whatever the facts, an allowed verdict never rests on a transition the table forbids: the
    /// step it was decided for is allowed, a settled request that the table forbids is rejected,
    /// and an ambiguous one is allowed only when every reading it could be is allowed (or, from
    /// a settled marker, when it was read as step 3).
    #[test]
    fn evaluate_never_allows_a_forbidden_transition(
        current in marker_state(),
        facts in facts(),
        intent in proptest::option::of(proptest::option::of(step())),
        fail_on in prop_oneof![Just(FailOn::Error), Just(FailOn::Warning)],
    ) {
        let observed = Observed::stated(current, "proptest");
        let intent = intent.map(|step| Intent { step, origin: "--step" });
        let Ok(evaluation) = engine::evaluate(&observed, &facts, intent, fail_on) else { return Ok(()) };
        if evaluation.verdict != Verdict::Allowed {
            return Ok(());
        }
        if let Some(step) = evaluation.step {
            prop_assert!(table_allows(current, step), "allowed {current} → {step}: {facts:?}");
        }
        let wanted = intent.and_then(|i| i.step);
        match &facts.requested {
            Requested::Step(s) => prop_assert!(table_allows(current, *s), "allowed {current} → {s}"),
            Requested::Ambiguous(options) => match (wanted, evaluation.step) {
                (Some(w), _) => prop_assert!(table_allows(current, w), "allowed {current} → {w} (intent)"),
                (None, Some(Step::Finalize)) if matches!(current, MarkerState::Syn2masMigrated | MarkerState::DelegatedAuth) => {}
                _ => {
                    for s in options {
                        prop_assert!(table_allows(current, *s), "allowed ambiguous {options:?} from {current}");
                    }
                }
            },
            Requested::NoMarker => prop_assert!(evaluation.step.is_none()),
        }
    }
}

/// The property above is not vacuous: the bare step-2 render is allowed and edited.
#[test]
fn step2_render_is_allowed_and_edited() {
    let input = step2_documents().concat();
    let guarded = guard::run(
        "step2",
        input.into_bytes(),
        &FixedState(MarkerState::LegacyAuth),
        &StateRequest::default(),
        None,
        &guard_args(),
        FailOn::Error,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(guarded.output.is_some(), "step 2 rejected");
    assert!(!guarded.plan.edits.is_empty(), "step 2 not edited");
}

/// The shared folder, or None (test skipped) when `ESS_GUARD_SHARED` is unset. With
/// `ESS_GUARD_REQUIRE_ALL=1` a missing folder fails instead.
fn shared(test: &str) -> Option<std::path::PathBuf> {
    match std::env::var_os("ESS_GUARD_SHARED") {
        Some(dir) => Some(std::path::PathBuf::from(dir)),
        None if std::env::var_os("ESS_GUARD_REQUIRE_ALL").is_some_and(|v| v == "1") => {
            panic!("{test}: ESS_GUARD_SHARED is not set and ESS_GUARD_REQUIRE_ALL=1")
        }
        None => {
            println!("skipped: {test}: ESS_GUARD_SHARED is not set");
            None
        }
    }
}

/// Every real ESS render (the chart's own output, Helm 3 and Helm 4 post-renderer input
/// included), under every stored marker: the stream covers its input, and when post-render
/// allows it, every document it does not edit comes out byte-identical and in place.
#[test]
fn real_renders_keep_untouched_documents() {
    let Some(shared) = shared("real_renders_keep_untouched_documents") else {
        return;
    };
    let mut files = Vec::new();
    let mut dirs = vec![shared.join("ess-renders")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
            if path.is_dir() && path.file_name().is_some_and(|n| n != "values") {
                dirs.push(path);
            } else if path.extension().is_some_and(|x| x == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(
        files.len() >= 10,
        "expected the ESS renders under {}",
        shared.display()
    );
    let (mut allowed, mut edited) = (0, 0);
    for file in &files {
        let input =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for mode in [ParseMode::Full, ParseMode::Relevant] {
            let s = Stream::parse("real", input.clone().into_bytes(), mode)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert_eq!(raw_concat(&s), input, "{}", file.display());
        }
        for state in MarkerState::ALL {
            let Ok(guarded) = guard::run(
                "real",
                input.clone().into_bytes(),
                &FixedState(state),
                &StateRequest::default(),
                None,
                &guard_args(),
                FailOn::Error,
            ) else {
                continue;
            };
            let Some(output) = guarded
                .output
                .as_ref()
                .map(|o| o.to_string(&guarded.stream))
            else {
                continue;
            };
            allowed += 1;
            let touched: Vec<usize> = guarded.plan.edits.iter().map(|(i, _)| *i).collect();
            edited += usize::from(!touched.is_empty());
            let (before, after) = (chunks(&input), chunks(&output));
            assert_eq!(
                after.len(),
                before.len() + guarded.plan.added.len(),
                "{} under {state}",
                file.display()
            );
            for (i, original) in before.iter().enumerate() {
                if !touched.contains(&i) {
                    assert_eq!(
                        &after[i],
                        original,
                        "{} under {state}: document {} changed",
                        file.display(),
                        i + 1
                    );
                }
            }
        }
    }
    assert!(
        allowed > 0 && edited > 0,
        "no allowed ({allowed}) or edited ({edited}) render: the test proves nothing"
    );
    println!(
        "real renders: {} files, {allowed} allowed runs, {edited} with edits",
        files.len()
    );
}
