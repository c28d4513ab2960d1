//! The live state source.

use crate::cli::StateArgs;
use crate::error::Error;
use crate::source::{MarkerTarget, Observed, StateSource};

pub struct LiveState {
    _args: StateArgs,
}

impl LiveState {
    pub fn from_args(args: &StateArgs) -> LiveState {
        LiveState { _args: args.clone() }
    }
}

impl StateSource for LiveState {
    fn observe(&self, _target: &MarkerTarget) -> Result<Observed, Error> {
        Err(Error::State("live".into()))
    }
}
