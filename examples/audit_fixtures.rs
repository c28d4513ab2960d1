//! Prints Kubernetes objects for `ess-guard audit` tests and benchmarks (see
//! tests/support/audit_fixtures.rs for what they are):
//!
//! ```text
//! cargo run --example audit_fixtures -- stages-namespaces | kubectl create -f -
//! cargo run --example audit_fixtures -- stages            | kubectl create -f -
//! cargo run --example audit_fixtures -- fleet-namespaces 0 1000 | kubectl create -f -
//! cargo run --example audit_fixtures -- fleet 0 1000 [RENDER]   | kubectl create -f -
//! ```

#[path = "../tests/support/audit_fixtures.rs"]
mod audit_fixtures;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize| -> usize {
        args.get(i).and_then(|n| n.parse().ok()).unwrap_or_else(|| {
            eprintln!("audit_fixtures: give the release range FROM TO");
            std::process::exit(2)
        })
    };
    let out = match args.first().map(String::as_str) {
        Some("stages-namespaces") => {
            let ns: Vec<String> = audit_fixtures::stage_namespaces()
                .iter()
                .map(|s| s.to_string())
                .collect();
            audit_fixtures::namespaces(&ns)
        }
        Some("stages") => audit_fixtures::stages(),
        Some("fleet-namespaces") => audit_fixtures::fleet(number(1), number(2), "").0,
        Some("fleet") => {
            // Optional third argument: a render to store as every record's manifest.
            let manifest = match args.get(3) {
                Some(path) => std::fs::read_to_string(path).unwrap_or_else(|e| {
                    eprintln!("audit_fixtures: cannot read {path}: {e}");
                    std::process::exit(2)
                }),
                None => "---\n".to_string(),
            };
            audit_fixtures::fleet(number(1), number(2), &manifest).1
        }
        _ => {
            eprintln!("usage: audit_fixtures stages-namespaces|stages|fleet-namespaces FROM TO|fleet FROM TO [RENDER]");
            std::process::exit(2)
        }
    };
    println!("{out}");
}
