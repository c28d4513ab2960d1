//! Reading one side of a diff (a file, `-`, or a directory of YAML files) into resources keyed
//! by identity, with the shared manifest reader.

use std::collections::BTreeMap;

use crate::error::Error;
use crate::input;
use crate::manifest::{Body, ParseMode, Resource, Stream};

/// What matches a resource across the two sides: API group (not version, so an apiVersion bump
/// is a change rather than a remove and an add), kind, namespace and name. The field order is
/// the output order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub group: String,
}

impl Key {
    fn of(resource: &Resource) -> Key {
        Key {
            kind: resource.id.kind.clone(),
            namespace: resource.id.namespace.clone(),
            name: resource.id.name.clone(),
            group: resource.id.group().to_string(),
        }
    }
}

/// A resource and where it was read.
#[derive(Debug, Clone)]
pub struct Located {
    pub resource: Resource,
    pub file: String,
    /// 1-based document number within `file`.
    pub document: usize,
}

impl Located {
    pub fn origin(&self) -> String {
        format!("{} (document {})", self.file, self.document)
    }
}

/// One side of the comparison.
#[derive(Debug, Default)]
pub struct Side {
    pub entries: BTreeMap<Key, Located>,
}

impl Side {
    /// Reads `arg`: `-` is stdin, a directory means its `*.yaml`/`*.yml` files (recursively).
    pub fn read(arg: &str) -> Result<Side, Error> {
        let mut side = Side::default();
        for file in input::expand(&[arg.to_string()])? {
            let bytes = input::read(&file)?;
            side.add(Stream::parse(&file, bytes, ParseMode::Full)?)?;
        }
        Ok(side)
    }

    /// Reads text already in memory (the guard's input and output).
    pub fn from_text(name: &str, text: String) -> Result<Side, Error> {
        let mut side = Side::default();
        side.add(Stream::parse(name, text.into_bytes(), ParseMode::Full)?)?;
        Ok(side)
    }

    fn add(&mut self, stream: Stream) -> Result<(), Error> {
        let file = stream.name;
        for doc in stream.docs {
            let resources = match doc.body {
                Body::Resource(r) => vec![r],
                Body::List(items) => items,
                Body::Empty | Body::Opaque { .. } => Vec::new(),
            };
            for resource in resources {
                let key = Key::of(&resource);
                let located = Located {
                    resource,
                    file: file.clone(),
                    document: doc.index + 1,
                };
                if let Some(first) = self.entries.get(&key) {
                    return Err(Error::Input(format!(
                        "{}: {} appears twice (also {}); resources are matched by identity, so each may appear once per side",
                        located.origin(),
                        located.resource.id,
                        first.origin()
                    )));
                }
                self.entries.insert(key, located);
            }
        }
        Ok(())
    }
}
