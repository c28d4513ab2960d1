//! Compares our values pipeline with a real Helm binary.
//!
//! For every case, `helm template` renders `fixtures/charts/values-echo` (whose only template
//! prints `.Values` as base64-encoded JSON) with the case's `-f`/`--set*`
//! arguments, and the result is compared with
//! `coalesce_for(v, helm_user_values_for(v, ...), chart defaults)`.
//! A case passes when both sides fail, or both succeed with equal values
//! (numbers compared as Helm prints them: integers exactly, otherwise as f64).
//!
//! Set `ESS_GUARD_HELM3` / `ESS_GUARD_HELM4` to the helm binaries; a test
//! whose variable is unset prints a note and passes.

mod support;

use ess_guard::values;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use values::merge::{self, HelmVersion, SetFlag};

struct Case {
    name: &'static str,
    /// Files written to the case directory: (name, content).
    files: &'static [(&'static str, &'static str)],
    /// Helm arguments in command-line order: (flag, value). `-f` values name
    /// a file of `files`; `{DIR}` in a value is the case directory.
    args: &'static [(&'static str, &'static str)],
}

const SF: (&str, &str) = ("sf.txt", "file content, with comma");
const SF2: (&str, &str) = ("sf2.txt", "line1\nline2\n");
const L1: (&str, &str) = ("l1.yaml", "l: [1, 2]\n");

#[rustfmt::skip]
const CASES: &[Case] = &[
    // --set paths, lists, indices
    Case { name: "index on empty grows with nulls", files: &[], args: &[("--set", "a[2]=x")] },
    Case { name: "nested list in map in list", files: &[], args: &[("--set", "a[0].b[1]=c")] },
    Case { name: "list syntax", files: &[], args: &[("--set", "a={1,2}")] },
    Case { name: "list syntax typed + escaped comma", files: &[], args: &[("--set", r"a={true,null,5,x\,y}")] },
    Case { name: "empty list braces", files: &[], args: &[("--set", "a={},b={,}")] },
    Case { name: "list as list element", files: &[], args: &[("--set", "a[0]={1,2}")] },
    Case { name: "indices out of order", files: &[], args: &[("--set", "a[1].b=1,a[0].c=2")] },
    Case { name: "nested list index", files: &[], args: &[("--set", "a[1][0]=1")] },
    Case { name: "index with plus sign", files: &[], args: &[("--set", "a[+1]=1")] },
    Case { name: "index without value", files: &[], args: &[("--set", "a[0]")] },
    Case { name: "dotted paths, several pairs", files: &[], args: &[("--set", "a.b=c,d.e=f"), ("--set", "a.x.y=1")] },
    Case { name: "escapes in keys", files: &[], args: &[("--set", r"a\.b=1,c\,d=2,e\=f=3")] },
    Case { name: "escaped comma in value", files: &[], args: &[("--set", r"a=x\,y,b=z")] },
    Case { name: "equals and braces in value", files: &[], args: &[("--set", "a=b=c,d=x{y}")] },
    Case { name: "empty value", files: &[], args: &[("--set", "a=,b.c=d")] },
    Case { name: "trailing comma", files: &[], args: &[("--set", "a=b,")] },
    Case { name: "trailing backslash", files: &[], args: &[("--set", r"a=b\")] },
    Case { name: "silent no-ops", files: &[], args: &[("--set", ""), ("--set", "=5"), ("--set", ".a=1"), ("--set", "a.")] },
    Case { name: "30 dots allowed", files: &[], args: &[("--set", "k0.k1.k2.k3.k4.k5.k6.k7.k8.k9.k10.k11.k12.k13.k14.k15.k16.k17.k18.k19.k20.k21.k22.k23.k24.k25.k26.k27.k28.k29.k30=1")] },
    Case { name: "index 65536 allowed", files: &[], args: &[("--set", "a[65536]=1")] },
    // --set type inference
    Case { name: "typed values", files: &[], args: &[("--set", "a=0x10,b=1e3,c=007,d=TRUE,e=Null,f=-07,g=+5,h=9223372036854775807,i=9223372036854775808,j=-0,k=falſe,l=0,m=1.5")] },
    Case { name: "large ints exact", files: &[], args: &[("--set", "a=9007199254740993,b=-9223372036854775808")] },
    Case { name: "set-string keeps strings", files: &[], args: &[("--set-string", "a=true,b=5,c=null,d=")] },
    // errors
    Case { name: "error: key without value", files: &[], args: &[("--set", "a")] },
    Case { name: "error: double comma", files: &[], args: &[("--set", "a=b,,c=d")] },
    Case { name: "error: data after list", files: &[], args: &[("--set", "a={a,b}c,d=1")] },
    Case { name: "error: unterminated list", files: &[], args: &[("--set", "a={x")] },
    Case { name: "error: negative index", files: &[], args: &[("--set", "a[-1]=1")] },
    Case { name: "error: index too large", files: &[], args: &[("--set", "a[65537]=1")] },
    Case { name: "error: index not a number", files: &[], args: &[("--set", "a[x]=1")] },
    Case { name: "error: data after index", files: &[], args: &[("--set", "a[0]x=1")] },
    Case { name: "error: empty key in path", files: &[], args: &[("--set", "a..b=1")] },
    Case { name: "error: 31 dots", files: &[], args: &[("--set", "k0.k1.k2.k3.k4.k5.k6.k7.k8.k9.k10.k11.k12.k13.k14.k15.k16.k17.k18.k19.k20.k21.k22.k23.k24.k25.k26.k27.k28.k29.k30.k31=1")] },
    Case { name: "v3/v4: unterminated index", files: &[], args: &[("--set", "x=1,a[1")] },
    Case { name: "v3/v4: unterminated nested index", files: &[], args: &[("--set", "a[0][1")] },
    Case { name: "v3/v4: unterminated literal index", files: &[], args: &[("--set-literal", "b.c[1")] },
    // --set over existing values
    Case { name: "set map over default scalar", files: &[], args: &[("--set", "image.tag.x=1")] },
    Case { name: "set list over default map", files: &[], args: &[("--set", "image[0]=1")] },
    Case { name: "set map over default list", files: &[], args: &[("--set", "list.x=1")] },
    Case { name: "error: set map into file string", files: &[("s.yaml", "a: str\n")], args: &[("-f", "s.yaml"), ("--set", "a.b=1")] },
    Case { name: "error: set map into file null", files: &[("n.yaml", "nn: null\n")], args: &[("-f", "n.yaml"), ("--set", "nn.b=1")] },
    Case { name: "error: set index into file null", files: &[("n.yaml", "nn: null\n")], args: &[("-f", "n.yaml"), ("--set", "nn[0]=1")] },
    Case { name: "extend file list", files: &[L1], args: &[("-f", "l1.yaml"), ("--set", "l[3]=1")] },
    Case { name: "map into file list element", files: &[L1], args: &[("-f", "l1.yaml"), ("--set", "l[0].x=1")] },
    Case { name: "error: list into file number element", files: &[L1], args: &[("-f", "l1.yaml"), ("--set", "l[0][0]=1")] },
    Case { name: "set-string into file list", files: &[L1], args: &[("-f", "l1.yaml"), ("--set-string", "l[1]=007")] },
    Case { name: "map replaces element set earlier", files: &[], args: &[("--set", "a[0]=5"), ("--set", "a[0].b=1")] },
    Case { name: "error: list into int element", files: &[], args: &[("--set", "a[0]=5"), ("--set", "a[0][1]=1")] },
    Case { name: "list into null element", files: &[], args: &[("--set", "x[0]=null"), ("--set", "x[0][1]=2")] },
    Case { name: "set into file map", files: &[("m.yaml", "a: {b: 1}\n")], args: &[("-f", "m.yaml"), ("--set", "a.c=2")] },
    // null handling against chart defaults
    Case { name: "null deletes default", files: &[], args: &[("--set", "replicas=null")] },
    Case { name: "null deletes nested default", files: &[], args: &[("--set", "nested.a.b=null")] },
    Case { name: "null deletes default map", files: &[], args: &[("--set", "nested.a=null")] },
    Case { name: "null deletes deep default", files: &[], args: &[("--set", "nested.deep.x.w=null")] },
    Case { name: "null for new key kept", files: &[], args: &[("--set", "x=null,y.z=null")] },
    Case { name: "null for new nested key kept", files: &[], args: &[("--set", "nested.z=null")] },
    Case { name: "v3/v4: null over null default", files: &[], args: &[("--set", "nested.dnull=null")] },
    Case { name: "top-level null over null default", files: &[], args: &[("--set", "nulled=null")] },
    Case { name: "file nulls against defaults", files: &[("u1.yaml", "nested:\n  a:\n    b: null\n    x: null\n  keep: null\n  newk: null\n  deep: {x: {w: null, q: null}}\nnulled: {a: 1}\nimage: 5\nlist: {a: 1}\nemptymap: {k: null}\n")], args: &[("-f", "u1.yaml")] },
    Case { name: "multi-file merge with null deletion", files: &[("a.yaml", "image: {tag: null, extra: 1}\nnested: null\n"), ("b.yaml", "image: {tag: \"2\"}\n")], args: &[("-f", "a.yaml"), ("-f", "b.yaml")] },
    Case { name: "lists replaced across files", files: &[("a.yaml", "a: [1, 2]\nlist: [9]\n"), ("b.yaml", "a: [3]\nb: {c: 1}\n"), ("c.yaml", "b: 5\n")], args: &[("-f", "a.yaml"), ("-f", "b.yaml"), ("-f", "c.yaml")] },
    // group order
    Case { name: "flag groups applied in fixed order", files: &[SF], args: &[("--set-literal", "a=1"), ("--set-string", "a=2"), ("--set-file", "a={DIR}/sf.txt"), ("--set", "a=3"), ("--set-json", "a=4")] },
    Case { name: "--set beats --set-json", files: &[], args: &[("--set", "a=1"), ("--set-json", "a=2,b=2")] },
    Case { name: "--set beats -f", files: &[("f.yaml", "a: 1\nb: 1\n")], args: &[("--set", "a=2"), ("-f", "f.yaml")] },
    // --set-json
    Case { name: "json list", files: &[], args: &[("--set-json", r#"a=[1,{"b":2}]"#)] },
    Case { name: "json values run together", files: &[], args: &[("--set-json", r#"a=1b=2,c="x"d=3"#)] },
    Case { name: "json numbers are float64", files: &[], args: &[("--set-json", "a=1.0,b=12345678901234567890,c=0.1,d=1E+2,e=-1.5e-3")] },
    Case { name: "json empty is null", files: &[], args: &[("--set-json", "a=,b= ,c=null")] },
    Case { name: "json spaces keep key space", files: &[], args: &[("--set-json", r#"a=  [1, 2] , b={"x":{"y":null}}"#)] },
    Case { name: "json lone surrogate", files: &[], args: &[("--set-json", r#"a="\ud800x\u00e9""#)] },
    Case { name: "json duplicate key", files: &[], args: &[("--set-json", r#"a={"k":1,"k":2}"#)] },
    Case { name: "json into path and index", files: &[], args: &[("--set-json", r#"a.b[1]={"c":true}"#), ("--set-json", "l[0]=,l[2]=3")] },
    Case { name: "error: json unterminated", files: &[], args: &[("--set-json", "a=[1,")] },
    Case { name: "error: json leading zero", files: &[], args: &[("--set-json", "a=01")] },
    Case { name: "error: json literal then key", files: &[], args: &[("--set-json", "a=truex")] },
    Case { name: "error: json number out of range", files: &[], args: &[("--set-json", "a=1e400")] },
    Case { name: "v3/v4: json object form", files: &[], args: &[("--set-json", r#" {"a": {"b": 1}, "replicas": null}"#)] },
    // --set-literal
    Case { name: "literal takes the rest", files: &[], args: &[("--set-literal", r"a=x,y=z\.{}[0]")] },
    Case { name: "literal path and index", files: &[], args: &[("--set-literal", "a.b[1]=c,d")] },
    Case { name: "literal has no escapes", files: &[], args: &[("--set-literal", r"a\.b=c"), ("--set-literal", "x,y=null")] },
    // --set-file
    Case { name: "set-file", files: &[SF, SF2], args: &[("--set-file", "a={DIR}/sf.txt,b={DIR}/sf2.txt")] },
    Case { name: "set-file list", files: &[SF, SF2], args: &[("--set-file", "a={{DIR}/sf.txt,{DIR}/sf2.txt}")] },
    Case { name: "error: set-file missing", files: &[], args: &[("--set-file", "a={DIR}/missing.txt")] },
    // values files
    Case { name: "yaml 1.1 scalars and keys", files: &[("y.yaml", "y: 1\nyes: 2\nOn: 3\nNO: 4\nv1: yes\nv2: off\nv3: Y\nv4: 010\nv5: 08\nv6: 1_000\nv7: 0b101\nv8: 0o17\nv9: 0x1F\nv10: 0X1F\nv11: -0x10\nv12: 1e3\nv13: 1.\nv14: .5\nv15: 1_0.5\nv16: 2001-12-14\nv17: +12\nv18: 012345678901234567890\nv19: 99999999999999999999999\nv21: \"yes\"\nv22: 'on'\nv23: 1:20\nv24: ~\nv25: Null\nv26: +.5\nv27: \"010\"\nv28: -0b11\nv29: 0b1_0\n")], args: &[("-f", "y.yaml")] },
    Case { name: "non-string keys", files: &[("k.yaml", "1e6: a\n0.1: b\n1.23456789: c\n99999999999999999999: e\n-1: f\n1e-7: g\n9223372036854775807: h\n0x10: i\n.inf: j\ntrue: k\n2.0: l\n1: m\n")], args: &[("-f", "k.yaml")] },
    Case { name: "tags", files: &[("t.yaml", "b: !foo bar\nc: !!int \"12\"\nd: !foo {x: 1}\ne: !!float 1\nf: !!str 5\ng: !!str yes\nh: !!str\n  on\n")], args: &[("-f", "t.yaml")] },
    Case { name: "anchors and merge keys", files: &[("m.yaml", "x: &x {a: 1, b: 2}\nm:\n  a: 0\n  <<: *x\n  c: 3\nz:\n  <<: *x\n  a: 5\nw:\n  <<: [*x, {b: 9, e: 1}]\nq:\n  \"<<\": *x\ns: &s on\nt: *s\n")], args: &[("-f", "m.yaml")] },
    Case { name: "json values file", files: &[("j.json", r#"{"a": 1, "b": [true, null], "c": {"d": "yes"}}"#)], args: &[("-f", "j.json")] },
    Case { name: "duplicate keys: last wins", files: &[("d.yaml", "a: 1\na: 2\n")], args: &[("-f", "d.yaml")] },
    Case { name: "empty-ish files", files: &[("e1.yaml", ""), ("e2.yaml", "# c\n"), ("e3.yaml", "---\n"), ("e4.yaml", "null\n"), ("e5.yaml", "{}\n")], args: &[("-f", "e1.yaml"), ("-f", "e2.yaml"), ("-f", "e3.yaml"), ("-f", "e4.yaml"), ("-f", "e5.yaml")] },
    Case { name: "CRLF file", files: &[("c.yaml", "a: 1\r\nb: yes\r\nc:\r\n  d: x\r\n")], args: &[("-f", "c.yaml")] },
    Case { name: "v3/v4: multi-document file", files: &[("md.yaml", "a: 1\nb: {c: 1}\n---\nb: {d: 2}\n--- # note\ne: 3\n---\n---\nf: 4\n...\n")], args: &[("-f", "md.yaml")] },
    Case { name: "v3/v4: empty first document", files: &[("md.yaml", "---\n---\na: 1\n")], args: &[("-f", "md.yaml")] },
    Case { name: "v3/v4: invalid later document", files: &[("md.yaml", "a: 1\n---\nb: [\n")], args: &[("-f", "md.yaml")] },
    Case { name: "v3/v4: list as later document", files: &[("md.yaml", "a: 1\n---\n- 1\n")], args: &[("-f", "md.yaml")] },
    Case { name: "error: separator followed by data", files: &[("md.yaml", "--- a\n")], args: &[("-f", "md.yaml")] },
    Case { name: "error: top-level list", files: &[("l.yaml", "- 1\n- 2\n")], args: &[("-f", "l.yaml")] },
    Case { name: "error: top-level scalar", files: &[("s.yaml", "hello\n")], args: &[("-f", "s.yaml")] },
    Case { name: "error: invalid yaml", files: &[("i.yaml", "a: [1\n")], args: &[("-f", "i.yaml")] },
    Case { name: "error: bad indentation", files: &[("i.yaml", "a: 1\n  b: 2\n")], args: &[("-f", "i.yaml")] },
    Case { name: "error: NaN value", files: &[("n.yaml", "a: .nan\n")], args: &[("-f", "n.yaml")] },
    Case { name: "error: null key", files: &[("n.yaml", "~: 1\n")], args: &[("-f", "n.yaml")] },
    Case { name: "error: uint64 key", files: &[("n.yaml", "12345678901234567890: 1\n")], args: &[("-f", "n.yaml")] },
    Case { name: "error: list key", files: &[("n.yaml", "[1]: 1\n")], args: &[("-f", "n.yaml")] },
    Case { name: "error: excessive aliasing", files: &[("bl.yaml", "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n")], args: &[("-f", "bl.yaml")] },
    Case { name: "error: merge of scalar", files: &[("n.yaml", "a:\n  <<: 5\n")], args: &[("-f", "n.yaml")] },
];

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Equality as Helm would print the values: integers exactly, other
/// numbers as f64.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(i), Some(j)) => i == j,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join("charts")
        .join("values-echo")
}

fn run_helm(helm: &str, args: &[String]) -> Result<Value, String> {
    let out = Command::new(helm)
        .arg("template")
        .arg("x")
        .arg(chart_dir())
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {helm}: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if !out.status.success() {
        return Err(stderr);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("  values: "))
        .ok_or_else(|| format!("no values line in helm output: {stdout}"))?;
    let json = base64_decode(line.trim().trim_matches('"'))
        .ok_or_else(|| format!("bad base64 from helm: {line}"))?;
    serde_json::from_slice(&json).map_err(|e| format!("bad JSON from helm: {e}"))
}

fn ours(version: HelmVersion, dir: &Path, case: &Case, defaults: &Value) -> Result<Value, String> {
    let mut files = Vec::new();
    let mut sets = Vec::new();
    for (flag, value) in case.args {
        let value = value.replace("{DIR}", &dir.display().to_string());
        let source = match *flag {
            "-f" => {
                let path = dir.join(&value);
                let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
                files.push((path.display().to_string(), text));
                continue;
            }
            "--set" => SetFlag::Auto,
            "--set-string" => SetFlag::String,
            "--set-json" => SetFlag::Json,
            "--set-literal" => SetFlag::Literal,
            "--set-file" => SetFlag::File,
            other => return Err(format!("unknown flag {other}")),
        };
        sets.push((source, value));
    }
    let mut read = |p: &str| -> Result<String, String> {
        std::fs::read(p)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| e.to_string())
    };
    let user = merge::helm_user_values_for(version, &files, &sets, &mut read)
        .map_err(|e| e.to_string())?;
    Ok(merge::coalesce_for(version, user, defaults))
}

fn compare_with(env_var: &str, version: HelmVersion) {
    let Some(helm) = support::require(env_var, "a Helm binary to compare --set/-f semantics with")
    else {
        return;
    };
    let helm = helm.display().to_string();
    let reported = Command::new(&helm)
        .args(["version", "--short"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let expected_prefix = match version {
        HelmVersion::V3 => "v3.",
        HelmVersion::V4 => "v4.",
    };
    assert!(
        reported.starts_with(expected_prefix),
        "{env_var}={helm} reports version {reported:?}"
    );
    let chart_values = std::fs::read_to_string(chart_dir().join("values.yaml"))
        .unwrap_or_else(|e| panic!("cannot read chart values: {e}"));
    let defaults = merge::parse_values_file_for(version, "values.yaml", &chart_values)
        .unwrap_or_else(|e| panic!("chart defaults: {e}"));

    let root = std::env::temp_dir().join(format!(
        "ess-guard-helm-compat-{}-{}",
        std::process::id(),
        expected_prefix.trim_end_matches('.')
    ));
    let mut failures = Vec::new();
    for (n, case) in CASES.iter().enumerate() {
        let dir = root.join(format!("case{n}"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for (name, content) in case.files {
            std::fs::write(dir.join(name), content).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let mut args = Vec::new();
        for (flag, value) in case.args {
            args.push((*flag).to_owned());
            let value = value.replace("{DIR}", &dir.display().to_string());
            args.push(if *flag == "-f" {
                dir.join(value).display().to_string()
            } else {
                value
            });
        }
        let theirs = run_helm(&helm, &args);
        let mine = ours(version, &dir, case, &defaults);
        let ok = match (&theirs, &mine) {
            (Ok(a), Ok(b)) => same(a, b),
            (Err(_), Err(_)) => true,
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "case {n} {:?} {:?}\n  helm: {}\n  ours: {}",
                case.name,
                case.args,
                theirs.map_or_else(|e| format!("ERROR {e}"), |v| v.to_string()),
                mine.map_or_else(|e| format!("ERROR {e}"), |v| v.to_string()),
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    let passed = CASES.len() - failures.len();
    println!("{reported}: {passed} passed, {} failed", failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn matches_helm3() {
    compare_with("ESS_GUARD_HELM3", HelmVersion::V3);
}

#[test]
fn matches_helm4() {
    compare_with("ESS_GUARD_HELM4", HelmVersion::V4);
}

#[test]
fn case_table_is_large_enough() {
    assert!(CASES.len() >= 40);
}
