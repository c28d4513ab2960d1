//! Reading inputs: files, directories of YAML files, `-` for stdin.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::Error;
use crate::state::MarkerState;

/// Expands the inputs: directories become their `*.yaml`/`*.yml` files (sorted, recursive), no
/// input means stdin.
pub fn expand(inputs: &[String]) -> Result<Vec<String>, Error> {
    if inputs.is_empty() {
        return Ok(vec!["-".to_string()]);
    }
    let mut out = Vec::new();
    for input in inputs {
        let path = Path::new(input);
        if input != "-" && path.is_dir() {
            let mut files = Vec::new();
            collect(path, &mut files)?;
            files.sort();
            if files.is_empty() {
                return Err(Error::Usage(format!(
                    "{input}: directory holds no .yaml or .yml files"
                )));
            }
            out.extend(files);
        } else {
            out.push(input.clone());
        }
    }
    Ok(out)
}

fn collect(dir: &Path, out: &mut Vec<String>) -> Result<(), Error> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::Usage(format!("cannot read directory {}: {e}", dir.display())))?;
    for entry in entries {
        let path = entry
            .map_err(|e| Error::Usage(format!("cannot read directory {}: {e}", dir.display())))?
            .path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path.display().to_string());
        }
    }
    Ok(())
}

/// Reads one input (`-` is stdin).
pub fn read(name: &str) -> Result<Vec<u8>, Error> {
    if name == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
            .map_err(|e| Error::Input(format!("cannot read stdin: {e}")))?;
        Ok(bytes)
    } else {
        std::fs::read(name).map_err(|e| Error::Usage(format!("cannot read {name}: {e}")))
    }
}

/// Reads `--state-map`: a YAML mapping of input path → stored marker.
pub fn read_state_map(path: &Path) -> Result<BTreeMap<String, MarkerState>, Error> {
    let name = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("cannot read --state-map {name}: {e}")))?;
    let value = crate::manifest::yaml::parse_embedded(&text).map_err(|e| {
        Error::Input(format!(
            "--state-map {name}: invalid YAML: {}",
            crate::manifest::one_line(&e.to_string())
        ))
    })?;
    let map = value.as_object().ok_or_else(|| {
        Error::Input(format!(
            "--state-map {name}: expected a mapping of input → state"
        ))
    })?;
    map.iter()
        .map(|(k, v)| {
            let state = v
                .as_str()
                .ok_or_else(|| {
                    Error::Input(format!("--state-map {name}: `{k}` must be a state string"))
                })?
                .parse::<MarkerState>()
                .map_err(|e| Error::Input(format!("--state-map {name}: `{k}`: {e}")))?;
            Ok((k.clone(), state))
        })
        .collect()
}
