//! `ess-guard policy`: prints the admission policies of [`crate::policy`].

use crate::cli::PolicyArgs;
use crate::error::Error;
use crate::policy::{self, PolicyOptions};

pub fn run(args: PolicyArgs) -> Result<u8, Error> {
    let mut opts = PolicyOptions {
        namespaces: args.namespaces,
        releases: args.releases,
        audit_only: args.audit_only,
    };
    // Same options, same bytes: order and duplicates do not change the output.
    opts.namespaces.sort();
    opts.namespaces.dedup();
    opts.releases.sort();
    opts.releases.dedup();
    policy::validate(&opts).map_err(Error::Usage)?;
    let text = policy::yaml(&opts).map_err(Error::Output)?;
    crate::output::write_stdout(text.as_bytes())?;
    Ok(0)
}
