//! The lower bound for a post-renderer that passes documents through: read stdin whole (as
//! ess-guard does), find every column-0 `---` document marker with memchr's substring search,
//! and write the documents back one by one. No YAML is read. Used by `scripts/bench.sh`.
//!
//! ```text
//! cargo run --release --example split_cat < render.yaml > copy.yaml
//! ```

use std::io::{Read, Write};

fn main() {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut input) {
        eprintln!("cannot read stdin: {e}");
        std::process::exit(2);
    }
    let stdout = std::io::stdout().lock();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout);
    let mut start = 0;
    let mut docs = 0usize;
    let result = (|| -> std::io::Result<()> {
        for marker in memchr::memmem::find_iter(&input, b"\n---") {
            let cut = marker + 1;
            out.write_all(&input[start..cut])?;
            start = cut;
            docs += 1;
        }
        out.write_all(&input[start..])?;
        out.flush()
    })();
    if let Err(e) = result {
        eprintln!("cannot write stdout: {e}");
        std::process::exit(2);
    }
    if std::env::var_os("SPLIT_CAT_COUNT").is_some() {
        eprintln!("{} documents", docs + 1);
    }
}
